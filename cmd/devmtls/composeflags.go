package main

import (
	"slices"
	"strings"

	"github.com/devmtls/devmtls/compose"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// projectFlags are Compose's project flags, spelled as compose spells them.
type projectFlags struct {
	files       []string
	projectName string
	projectDir  string
	profiles    []string
	envFiles    []string
}

// addTo registers the flags on a command that parses its flags with cobra
// (status, env …).
func (f *projectFlags) addTo(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&f.files, "file", "f", nil, "compose configuration file (repeatable; default: COMPOSE_FILE, else compose.yaml found from the current directory upwards)")
	fs.StringVarP(&f.projectName, "project-name", "p", "", "compose project name (default: COMPOSE_PROJECT_NAME, name:, else the project directory's name)")
	fs.StringVar(&f.projectDir, "project-directory", "", "compose project directory (default: the directory of the first compose file)")
	fs.StringArrayVar(&f.profiles, "profile", nil, "compose profile to enable (repeatable; default: COMPOSE_PROFILES)")
	fs.StringArrayVar(&f.envFiles, "env-file", nil, "compose environment file (repeatable; default: .env in the project directory)")
}

// documentProjectFlags lists compose's project flags, and devmtls's --dir,
// in the help of a command that reads them itself (DisableFlagParsing:
// parseComposeArgs reads them, wherever they stand, and passes the rest on).
func documentProjectFlags(cmd *cobra.Command) {
	(&projectFlags{}).addTo(cmd.Flags())
}

// explicit reports whether the user named a project on the command line.
func (f *projectFlags) explicit() bool {
	return len(f.files) > 0 || f.projectDir != ""
}

func (f *projectFlags) loadOptions(cwd string) compose.LoadOptions {
	return compose.LoadOptions{Files: f.files, ProjectName: f.projectName, ProjectDir: f.projectDir,
		Profiles: f.profiles, EnvFiles: f.envFiles, WorkingDir: cwd}
}

// composeArgs is a compose-style command line split into what devmtls reads
// and what it passes on.
type composeArgs struct {
	project projectFlags
	dir     string   // devmtls's own --dir
	help    bool     // -h/--help meant for devmtls
	globals []string // compose's other global flags (--ansi never, --verbose …), passed before the subcommand
	rest    []string // the subcommand's flags and arguments, passed after it
}

// Compose's global flags besides the project flags; they must come before the
// subcommand, so devmtls moves them there.
var (
	composeGlobalValueFlags = []string{"--ansi", "--log-level", "--parallel", "--progress", "-c", "--context", "-H", "--host", "--tlscacert", "--tlscert", "--tlskey"}
	composeGlobalBoolFlags  = []string{"--verbose", "--no-ansi", "--compatibility", "--dry-run", "--tls", "--tlsverify", "--skip-hostname-check", "--all-resources"}
)

// parseComposeArgs reads devmtls's and compose's project flags out of args.
// With untilSubcommand (devmtls compose …), it stops at the first argument
// that is not a flag: everything from there on belongs to the compose
// subcommand, so `devmtls compose logs -f api` keeps its -f (--follow).
// Otherwise (devmtls up/down …) it reads them anywhere before "--".
func parseComposeArgs(args []string, untilSubcommand bool) (composeArgs, error) {
	var ca composeArgs
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			ca.rest = append(ca.rest, args[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if untilSubcommand {
				ca.rest = append(ca.rest, args[i:]...)
				break
			}
			ca.rest = append(ca.rest, a)
			continue
		}
		name, value, hasValue := a, "", false
		if strings.HasPrefix(a, "--") {
			if n, v, ok := strings.Cut(a, "="); ok {
				name, value, hasValue = n, v, true
			}
		} else if len(a) > 2 && strings.Contains("fp", a[1:2]) {
			// -fcompose.yaml, -pname
			name, value, hasValue = a[:2], a[2:], true
		}
		takeValue := func() (string, error) {
			if hasValue {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", usageErrorf("flag needs an argument: %s", name)
			}
			i++
			return args[i], nil
		}
		var dest *[]string
		var single *string
		switch name {
		case "-f", "--file":
			dest = &ca.project.files
		case "--profile":
			dest = &ca.project.profiles
		case "--env-file":
			dest = &ca.project.envFiles
		case "-p", "--project-name":
			single = &ca.project.projectName
		case "--project-directory":
			single = &ca.project.projectDir
		case "--dir":
			single = &ca.dir
		case "-h", "--help":
			ca.help = true
			continue
		default:
			switch {
			case slices.Contains(composeGlobalValueFlags, name):
				v, err := takeValue()
				if err != nil {
					return ca, err
				}
				ca.globals = append(ca.globals, name, v)
			case slices.Contains(composeGlobalBoolFlags, name):
				ca.globals = append(ca.globals, a)
			default:
				ca.rest = append(ca.rest, a)
			}
			continue
		}
		v, err := takeValue()
		if err != nil {
			return ca, err
		}
		if dest != nil {
			*dest = append(*dest, v)
		} else {
			*single = v
		}
	}
	return ca, nil
}
