// Command etcd is the etcd server at the version Kubernetes pins (3.4.13 for 1.21).
package main

import "go.etcd.io/etcd/etcdmain"

func main() {
	etcdmain.Main()
}
