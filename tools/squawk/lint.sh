#!/usr/bin/env bash
# Lints the migrations with squawk (pinned in tools/squawk/package.json; the
# rules it skips are in .squawk.toml), then checks that the rules bite: every
# fixture under schema/testdata/squawk/reject must fail on the rule its first
# line names, every one under accept must pass. Run from the repository root
# (make lint does); installs squawk (npm install, from the lock file) when
# it is missing.
set -euo pipefail

squawk=tools/squawk/node_modules/.bin/squawk
if [ ! -x "$squawk" ]; then
  npm install --prefix tools/squawk --no-audit --no-fund >/dev/null
fi

# tern runs a migration in one transaction unless it carries the disable-tx
# marker; squawk is told the same, file by file.
lint() {
  if grep -q '^---- tern: disable-tx ----$' "$1"; then
    "$squawk" --pg-version 15 --reporter gcc "$1"
  else
    "$squawk" --pg-version 15 --assume-in-transaction --reporter gcc "$1"
  fi
}

status=0
for f in schema/*.sql; do
  lint "$f" || status=1
done
[ "$status" = 0 ] || { echo "squawk: schema/ has findings (fix, or justify with -- squawk-ignore <rule> -- <why>)" >&2; exit 1; }

for f in schema/testdata/squawk/reject/*.sql; do
  rule="$(sed -n '1s/^-- squawk must reject: //p' "$f")"
  [ -n "$rule" ] || { echo "$f: first line must be '-- squawk must reject: <rule>'" >&2; exit 1; }
  if out="$(lint "$f" 2>&1)"; then
    echo "$f: squawk accepted it; it must reject it with $rule" >&2; exit 1
  fi
  grep -q " $rule " <<<"$out" || { echo "$f: squawk rejected it, but not with $rule:" >&2; echo "$out" >&2; exit 1; }
done
for f in schema/testdata/squawk/accept/*.sql; do
  lint "$f" || { echo "$f: squawk must accept it" >&2; exit 1; }
done
echo "squawk: schema/*.sql clean; $(ls schema/testdata/squawk/reject/*.sql | wc -l) fixtures rejected, $(ls schema/testdata/squawk/accept/*.sql | wc -l) accepted"
