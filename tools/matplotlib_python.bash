# Sourced by the tools that draw (tools/report/report, tools/plot_run) and their tests:
# matplotlib_python prints the first python3 that imports matplotlib and returns 0, or returns 1.
# Debian's /usr/bin/python3 (with python3-matplotlib) comes first, because a pyenv or venv
# python3 earlier on PATH does not see Debian's packages; then python3 on PATH.
matplotlib_python() {
  local python
  for python in /usr/bin/python3 python3; do
    if command -v "$python" >/dev/null 2>&1 && "$python" -c 'import matplotlib' >/dev/null 2>&1; then
      echo "$python"
      return 0
    fi
  done
  return 1
}
