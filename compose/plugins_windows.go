package compose

import "os"

// composePluginFile is the Compose CLI plugin's file name.
const composePluginFile = "docker-compose.exe"

// systemPluginDirs are the docker CLI's system-wide plugin directories on
// Windows: windowsPluginDirs of this machine's ProgramData and ProgramFiles.
func systemPluginDirs(lookupEnv func(string) (string, bool)) []string {
	programData, _ := lookupEnv("ProgramData")
	programFiles, _ := lookupEnv("ProgramFiles")
	return windowsPluginDirs(programData, programFiles)
}

// isPlugin reports whether path is a regular file; Windows has no execute
// bit, the .exe name is what makes it runnable.
func isPlugin(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
