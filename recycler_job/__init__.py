"""gluster-recycler: wipes released GlusterFS PersistentVolumes and returns them to the pool."""

__version__ = "0.1.0"
