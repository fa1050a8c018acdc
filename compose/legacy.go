package compose

import (
	"slices"
	"strings"
)

// composeTopLevel are the top-level keys of the compose format that are not
// services.
var composeTopLevel = []string{"version", "name", "services", "networks", "volumes", "secrets", "configs", "include", "models"}

// LegacyFormatError says that a compose file is in the legacy version 1
// format (services at the top level, no services: key). docker-compose v1
// still runs such a file, but compose-go (and so devmtls and Compose v2) sees
// no service in it.
type LegacyFormatError struct {
	File string
}

func (e *LegacyFormatError) Error() string {
	return e.File + " is in the legacy version 1 compose format (services at the top level, no services: key), in which devmtls finds no service; " +
		"indent the services under a top-level services: key (the format docker compose and docker-compose 1.27+ read)"
}

// legacyFormat returns the first file whose top level holds services without
// a services: key, or "".
func legacyFormat(files []string, raw func(file string) map[string]any) string {
	for _, f := range files {
		top := raw(f)
		if _, modern := top["services"]; modern {
			continue
		}
		for k, v := range top {
			if slices.Contains(composeTopLevel, k) || strings.HasPrefix(k, "x-") {
				continue
			}
			if svc, ok := v.(map[string]any); ok {
				_, image := svc["image"]
				_, build := svc["build"]
				if image || build {
					return f
				}
			}
		}
	}
	return ""
}
