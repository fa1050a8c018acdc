#!/bin/sh
# The rule for where tests live (README, "Tests"): a test that needs the Docker
# Engine or the test cluster lives under test/ (test/compose: Docker, both
# Compose lines, PostgreSQL and HAProxy in containers, the built binary on the
# host; test/e2e: the cluster) and drives the built binary; the tests next to
# the code never need a daemon or a cluster. No file is named *_e2e_test.go:
# the directory says what a test is. make lint runs this check.
set -eu
cd "$(dirname "$0")/.."
fail=0
named=$(git ls-files --cached --others --exclude-standard -- '*_e2e_test.go')
if [ -n "$named" ]; then
	echo "end-to-end tests go under test/, named *_test.go, not *_e2e_test.go:"
	echo "$named"
	fail=1
fi
# What only the end-to-end packages may use: the Compose lines of the machine,
# a connection to the Docker Engine, the docker and kubectl commands, the test
# cluster.
pattern='testenv\.(ForEachCompose|ComposeLines|ComposeLine)\b|\.ConnectDocker\(|exec\.Command(Context)?\(([a-z]+, )?"(docker|kubectl)"|LookPath\([a-z]+, "(docker|kubectl)"|devmtls/test/cluster"'
outside=$(git ls-files --cached --others --exclude-standard -- '*_test.go' ':!:test/**' | xargs -r grep -lE "$pattern" || true)
if [ -n "$outside" ]; then
	echo "these tests need Docker or the test cluster; move them under test/ (see README, Tests):"
	for f in $outside; do grep -nE "$pattern" "$f" | sed "s|^|$f:|"; done
	fail=1
fi
exit $fail
