// Package deploy tests what an operator deploys and watches, rather than Go
// code: the container image (Dockerfile, .dockerignore and the image's
// config.yml in this folder), the docker compose demo (docker-compose.yml,
// .env.example, examples/compose, examples/receiver's image), the alert
// rules of examples/alerts.yml, and what /metrics and the log show while a
// real registry's push is delivered, retried and dead-lettered. It holds
// only tests.
//
// There is no Docker engine on the test machines, so the tests check what
// can be checked for real: the files with the parsers their tools use
// (compose-go, distribution's configuration, regwebhook's config), and the
// binary built with the Dockerfile's own go build line, run as the image's
// unprivileged user.
package deploy
