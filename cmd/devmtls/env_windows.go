package main

import (
	"os"
	"unsafe"

	"github.com/devmtls/devmtls/hostenv"
	"golang.org/x/sys/windows"
)

// defaultEnvFormat follows the shell devmtls runs from (cmd.exe, PowerShell,
// Git Bash); powershell, the default shell of Windows Terminal, otherwise.
func defaultEnvFormat() hostenv.Format {
	return formatForShell(parentProcessName(), hostenv.FormatPowerShell)
}

// parentProcessName is the executable name of devmtls's parent process, ""
// when it cannot be found (it may have exited already).
func parentProcessName() string {
	snapshot, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return ""
	}
	defer windows.CloseHandle(snapshot)
	ppid := uint32(os.Getppid())
	var entry windows.ProcessEntry32
	entry.Size = uint32(unsafe.Sizeof(entry))
	for err = windows.Process32First(snapshot, &entry); err == nil; err = windows.Process32Next(snapshot, &entry) {
		if entry.ProcessID == ppid {
			return windows.UTF16ToString(entry.ExeFile[:])
		}
	}
	return ""
}
