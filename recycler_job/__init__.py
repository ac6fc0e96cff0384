"""gluster-recycler: wipes released GlusterFS PersistentVolumes and returns them to the pool.

The version is pyproject.toml's, read from the installed metadata (no copy here).
"""
