#!/bin/sh
# Edits the tree it is started in (tests/filesystem.rs builds it: README, src/, docs/, bin/, a
# symbolic link and a hard link), then prints what it sees. Run natively on one copy and under
# cloister on another, it must print the same bytes; nothing in the output depends on where the
# tree is, on times, inode numbers or link counts.
set -eu

# Write, append, create in nested and new directories.
echo "appended line" >> README
printf 'int main(void) { return 42; }\n' > src/main.c
echo "new file" > src/lib/new.c
mkdir -p build/out
echo "artefact" > build/out/a.o

# Delete, and replace a directory with a file.
rm docs/old/legacy.txt
rm -r docs/old
echo "docs/old is a file now" > docs/old

# Rename (the symbolic link now dangles, then points at the new name), and rename the second
# name of a hard link into another directory.
mv docs/guide.txt docs/manual.txt
test ! -e link-to-guide
ln -sfn docs/manual.txt link-to-guide
mv hard.h src/hard.h

# Permission bits of a created file, a host file and a host directory.
chmod 0755 docs/manual.txt
chmod 0600 src/lib/util.c
chmod 0700 bin

echo "--- ls"
for dir in . src src/lib docs bin build/out; do
    echo "$dir:"
    # Neither link counts nor times: drop the second column and the (empty) date.
    ls -lA --time-style=+ "$dir" | grep -v '^total' | awk '{ $2 = ""; print }'
done
echo "--- cat"
cat README src/main.c src/lib/new.c docs/old docs/manual.txt link-to-guide src/hard.h
echo "--- stat"
stat -c '%n %F %a %s' README src/main.c src/lib/util.c src/hard.h src/lib/util.h docs/old bin \
    link-to-guide
echo "--- find"
find . -printf '%p %y %m %s %l\n' | LC_ALL=C sort
