package ide

// renewInterpreter runs the JetBrains renewal step's script text on the
// system that writes the configuration.
const renewInterpreter = "powershell.exe"
