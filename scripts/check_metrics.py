#!/usr/bin/env python3
"""Parses Prometheus text exposition from stdin with prometheus_client's parser (the
reference implementation's format rules) and prints one JSON line per sample. Exits
non-zero on a parse error. Used by tests/api.rs."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
try:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            print(json.dumps({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value}))
except Exception as e:  # the parser raises ValueError and friends
    print(f"parse error: {e}", file=sys.stderr)
    sys.exit(1)
