// Package deploycheck holds the tests of the deployment files at the root
// of the repository (docker-compose.yml, .env.example, Dockerfile,
// deploy/): they run in `make test`, where no Docker engine or Kubernetes
// cluster is, and check those files against the official loaders and
// schemas and against the code they deploy.
package deploycheck
