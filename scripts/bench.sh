#!/usr/bin/env bash
# make bench: not written yet (issue #6). It will drive minersim through the proxy to
# testpool at 1k, 10k and 19k miners and write BENCHMARKS.md.
echo "bench: not implemented yet (see issue #6); nothing measured" >&2
exit 1
