#!/bin/bash
# A shell session's usual sources of run-to-run differences, printed as key=value lines: date,
# $RANDOM and $SRANDOM, mktemp, the order of `ls -f` (unsorted) in a directory whose files are
# created in the order given as arguments, process ids and what ps sees. Everything the script
# creates it removes.
set -eu

echo "date=$(date)"
echo "date_ns=$(date +%s.%N)"
echo "date_utc=$(date -u +%FT%T.%N)"
echo "random=$RANDOM $RANDOM $RANDOM"
echo "srandom=$SRANDOM"
file=$(mktemp)
echo "mktemp=$file"
dir=$(mktemp -d)
echo "mktemp_dir=$dir"
for name in "$@"; do
    : > "$dir/$name"
done
echo "ls_f=$(ls -f "$dir" | tr '\n' ' ')"
echo "ls_U=$(ls -U "$dir" | tr '\n' ' ')"
echo "find=$(cd "$dir" && find . | tr '\n' ' ')"
echo "glob=$(cd "$dir" && echo *)"
rm -rf "$file" "$dir"
echo "pid=$$"
echo "ppid=$PPID"
echo "subshell=$(echo $BASHPID)"
sleep 0.01 &
wait $!
echo "background=$!"
# Not `ps | sed`: ps would see the pipeline's other process either before or after its exec,
# as the scheduler has it (an interleaving, which reproducible mode does not fix).
procs=$(ps -e -o pid=,ppid=,comm=)
echo "$procs" | sed 's/^ */ps=/'
echo "urandom=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
echo "uname=$(uname -a)"
echo "hostname=$(hostname)"
echo "nproc=$(nproc)"
echo "date_end=$(date +%s.%N)"
