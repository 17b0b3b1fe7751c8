#!/usr/bin/env bash
# Counts what README's "Conformance and regression" table reports: conformance cases per file
# (the `case NAME {` blocks of vectors/conformance/*.cases, as `simlab suite list` shows them),
# proptest properties (the test functions inside `proptest! { … }` blocks) and model-based
# state-machine tests (`prop_state_machine! { … }`) in the workspace's Rust sources.
#
#   scripts/count-tests.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
total=0
for f in vectors/conformance/*.cases; do
    n=$(grep -c '^case ' "$f")
    printf '%-34s %4d cases\n' "$f" "$n"
    total=$((total + n))
done
printf '%-34s %4d cases\n' "conformance total" "$total"
python3 - <<'PY'
import glob, re
def blocks(text, macro):
    for m in re.finditer(macro + r'!\s*\{', text):
        i, depth = m.end(), 1
        while depth and i < len(text):
            depth += {'{': 1, '}': -1}.get(text[i], 0)
            i += 1
        yield text[m.end():i]
props, files, models = 0, 0, []
for path in sorted(glob.glob('**/*.rs', recursive=True)):
    if path.startswith(('target/', 'fuzz/')):
        continue
    text = open(path, encoding='utf-8').read()
    n = sum(len(re.findall(r'\bfn\s+\w+\s*\(', b)) for b in blocks(text, r'\bproptest'))
    if n:
        props, files = props + n, files + 1
    for b in blocks(text, r'\bprop_state_machine'):
        models += [f'{path}: {name}' for name in re.findall(r'\bfn\s+(\w+)\s*\(', b)]
print(f'{"proptest properties":<34} {props:4d} in {files} files')
print(f'{"model-based (state machine) tests":<34} {len(models):4d}')
for m in models:
    print('  ' + m)
PY
