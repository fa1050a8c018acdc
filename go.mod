module github.com/devmtls/devmtls

go 1.26
