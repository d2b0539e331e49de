// Command etcd is the upstream etcd server. go.etcd.io/etcd/server/v3 carries replace directives, so
// it cannot be installed with `go install`; this module links its entry point instead.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
