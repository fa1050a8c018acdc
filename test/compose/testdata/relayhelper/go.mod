module relayhelper

go 1.24
