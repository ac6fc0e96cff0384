//go:build tools

// Package testenv pins the Kubernetes commands built for the test sandbox, and the openapi-gen
// that prepare.sh runs (the module of this release does not ship its generated OpenAPI code).
package testenv

import (
	_ "k8s.io/kube-openapi/cmd/openapi-gen"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
