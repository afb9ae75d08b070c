#!/bin/sh
# An interactive shell inside L1, for debugging by hand:
#   LAB_INTERACTIVE=1 bash -c '. tests/lab/lib.sh; lab_run_l1 -- tests/lab/l1/shell.sh'
# The helpers (l2_command, l2_run, ...) are loaded. `exit` powers L1 off.
echo "lab: shell in L1; /share, /cache and /lab are mounted"
exec bash --rcfile "$LAB_HELPERS" -i
