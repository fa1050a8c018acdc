// Package compose puts an environment's dev credentials into a Docker Compose
// project without touching the user's files: it loads the project exactly as
// Compose v2 does (compose-go), reads the x-devmtls settings, writes each
// service's own copy of its credential files (owned by the container user),
// generates the overlay .devmtls/compose.override.yaml that mounts them, and
// runs `docker compose` (or `docker-compose`) with the user's files plus the
// overlay. It also reports, through the Docker Engine API, which containers
// have their credentials mounted.
package compose
