#!/usr/bin/env bash
# The study's validation corpus: English text from Debian packages, a 32000-piece SentencePiece
# tokenizer (the study presets' vocab) and one token shard of about 20M tokens.
#
#   tools/corpus.sh [OUT_DIR [TEXT_DIR]]     defaults: data/study and OUT_DIR-text
#
# OUT_DIR gets only tokenizer.model, tokenizer.vocab and tokens.bin, so it fits the 64 MiB that
# travels to the GPU machine; the packages and the plain text stay in TEXT_DIR. Every step skips
# what an earlier run finished (each output is written under a temporary name and renamed), so
# running it again is cheap; delete a file to redo its step.
#
# Sources (all of Debian main; each .deb is fetched with `apt-get download` and unpacked here,
# not installed: the dict-* packages depend on the dictd server, which would start a daemon):
#   dict-gcide     GNU Collaborative International Dictionary of English (Webster 1913 + more)
#   wordnet-base   WordNet 3.0 glosses, one line per synset
#   dict-foldoc    Free On-line Dictionary of Computing
#   dict-jargon    the Jargon File
#   dict-devil     Ambrose Bierce, The Devil's Dictionary
#   fortunes       fortune cookies (the non-offensive set; the art files left out)
#   python3-doc    the Python manual's reStructuredText sources
#   perl-doc       the Perl manual (POD through pod2text, from Debian's perl)
#   bible-kjv      the King James Bible, as tools/train_demo.sh gets it (data/kjv.txt is reused)
#
# PREPARE_DATA=path/to/prepare_data uses that binary; otherwise the cpu preset builds it.
# TOKENIZER_SAMPLE_EVERY=N trains the tokenizer on every N-th line (default 4): SentencePiece's
# BPE trainer on all ~75 MB takes far longer on 2 cores and learns nearly the same pieces.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

out=${1:-data/study}
out=${out%/}
text_dir=${2:-$out-text}
text_dir=${text_dir%/}
debs=$text_dir/debs
sample_every=${TOKENIZER_SAMPLE_EVERY:-4}
max_shard_mib=60  # OUT_DIR travels in a 64 MiB carry with whatever else the run needs

say() { echo "corpus: $*"; }
megabytes() { awk -v b="$(cat "$@" | wc -c)" 'BEGIN {printf "%.1f MB", b / 1e6}'; }
die() { echo "corpus: error: $*" >&2; exit 1; }
mkdir -p "$out" "$text_dir" "$debs"

# --- packages ---------------------------------------------------------------------------------

refreshed=no
refresh_package_lists() {
  [ "$refreshed" = yes ] && return 0
  refreshed=yes
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "refreshing apt's package lists"
  $sudo apt-get update -qq >/dev/null 2>&1 || say "apt-get update failed; trying the lists at hand"
}

# Unpacks Debian package $1 into $debs/$1 (once) and prints that directory.
unpack_package() {
  local name=$1 dir=$debs/$1
  if [ ! -d "$dir" ]; then
    local tmp
    tmp=$(mktemp -d "$debs/.fetch-$name.XXXXXX")
    say "downloading $name" >&2
    # Lists can be missing or stale on a fresh machine: refresh them once, then try again.
    if ! (cd "$tmp" && apt-get download "$name" >log 2>&1); then
      refresh_package_lists >&2
      if ! (cd "$tmp" && apt-get download "$name" >log 2>&1); then
        local why
        why=$(grep -E '^(E|W):' "$tmp/log" | tail -2 | tr '\n' ' ')
        rm -rf "$tmp"
        die "cannot get Debian package '$name' with apt-get download: ${why:-no reason given}" \
            "(is this Debian with its main archive in the apt sources, and is the network up?)"
      fi
    fi
    dpkg-deb -x "$tmp"/*.deb "$tmp/root" || die "cannot unpack $tmp/*.deb for '$name'"
    mv "$tmp/root" "$dir"
    rm -rf "$tmp"
  fi
  echo "$dir"
}

# --- text extraction: each writes plain text on stdout -----------------------------------------

# A dictd database's entries without its 00-database-* ones (URL, licence, alphabet), which
# dictfmt puts before or after the others: the .index lists every entry with a base64 offset
# and length, and the bytes from the first real entry to the end of the last are kept.
dictd_entries() {  # dictd_entries DIR NAME
  local dict=$1/usr/share/dictd/$2.dict.dz index=$1/usr/share/dictd/$2.index
  local range
  range=$(awk -F'\t' '
    function b64(s,   i, n) {
      n = 0
      for (i = 1; i <= length(s); i++)
        n = n * 64 + index("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                           substr(s, i, 1)) - 1
      return n
    }
    /^00/ { next }
    {
      at = b64($2); end = at + b64($3)
      if (first == "" || at < first) first = at
      if (end > last) last = end
    }
    END { print first + 0, last - first }' "$index")
  gzip -dc "$dict" | tail -c +"$((${range% *} + 1))" | head -c "${range#* }"
}

# Dictionary markup to prose: paragraphs (blank-line separated, indented continuation lines)
# become one line each; cross-reference braces, source tags such as [1913 Webster] and GCIDE's
# pronunciations (\Ab*do"men\, ([a^]d*dr[e^]s")) go. GCIDE's character codes keep their
# letters (['e] e, [oe] oe, [eth] th), a few symbols become themselves ([deg] °). FOLDOC's
# <domain> tags, (1995-02-07) dates and [{Jargon File}] lines go too.
dictd_to_prose() {
  awk '
    BEGIN {
      named["eth"] = "th"; named["thorn"] = "th"; named["yogh"] = "y"; named["imac"] = "i"
      named["aum"] = "a"; named["asl"] = "a"; named["add"] = "a"; named["udd"] = "u"
      named["ae"] = "ae"; named["AE"] = "AE"; named["oe"] = "oe"; named["OE"] = "OE"
      named["ng"] = "ng"; named["th"] = "th"; named["deg"] = "\302\260"
      named["sect"] = "\302\247"; named["root"] = "\342\210\232"
    }
    # A headword line and its ", n." continuation meet with a space between; no comma wants one.
    function flush() { if (para != "") { gsub(/ +,/, ",", para); print para }; para = "" }
    # The letters a character code stands for, or "" when the brackets hold something else.
    function decoded(code,   inner) {
      inner = substr(code, 2, length(code) - 2)
      if (inner in named) return named[inner]
      if (inner ~ /^[`\047"^~,=.*-][A-Za-z][A-Za-z]?$/ || inner ~ /^[A-Za-z][A-Za-z]?[\^=~]$/) {
        gsub(/[^A-Za-z]/, "", inner)
        return inner
      }
      return ""
    }
    {
      line = $0
      gsub(/\[[^]]*(Webster|WordNet|PJC|Century|Source|Jargon File)[^]]*\]/, "", line)
      if (line ~ /^[^ \t]/) { flush(); gsub(/ *\\[^\\]*\\/, "", line) }
      gsub(/ ?\([^ ()]*[*"][^ ()]*\)/, "", line)
      rest = line; line = ""
      while (match(rest, /\[[^] ]+\]/)) {
        code = substr(rest, RSTART, RLENGTH); letters = decoded(code)
        line = line substr(rest, 1, RSTART - 1) (letters == "" ? code : letters)
        rest = substr(rest, RSTART + RLENGTH)
      }
      line = line rest
      gsub(/[{}]/, "", line)
      sub(/^[ \t]+/, "", line); sub(/[ \t]+$/, "", line)
      if (line ~ /^\([0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]\)$/) line = ""
      if (para == "") sub(/^<[^>]*> */, "", line)
      if (line == "") { flush(); next }
      para = (para == "" ? line : para " " line)
    }
    END { flush() }'
}

# WordNet's data.* files: "words (part of speech): gloss" per synset. Each line is
# offset lex_file type word_count(hex) word lex_id ... | gloss; the licence lines start "  ".
wordnet_glosses() {  # wordnet_glosses DIR
  local pos
  for pos in noun verb adj adv; do
    awk -v pos="$pos" '
      /^  / { next }
      {
        n = index("0123456789abcdef", substr($4, 1, 1)) * 16 - 16 + \
            index("0123456789abcdef", substr($4, 2, 1)) - 1
        words = ""
        for (i = 0; i < n; i++) {
          w = $(5 + 2 * i); sub(/\([a-z]+\)$/, "", w); gsub(/_/, " ", w)
          words = words (i ? ", " : "") w
        }
        gloss = substr($0, index($0, "| ") + 2); sub(/ +$/, "", gloss)
        print words " (" pos "): " gloss
      }' "$1/usr/share/wordnet/data.$pos"
  done
}

# Fortune files: one blank line between cookies instead of "%"; the ASCII-art files are left out.
fortunes_text() {  # fortunes_text DIR
  local f
  for f in "$1"/usr/share/games/fortunes/*; do
    case $(basename "$f") in *.dat | *.u8 | art | ascii-art) continue ;; esac
    sed 's/^%$//' "$f"
  done
}

# reStructuredText to plain text: roles (:func:`len`) and inline markup keep their text,
# links keep their title, directives keep their argument (a function signature, a note),
# directive options, labels, comments and heading underlines go. Code blocks stay as they are.
rst_to_text() {
  awk '
    /^[ \t]*[=\-~^*#"+`:.]+[ \t]*$/ && length($0) > 3 { next }
    /^\.\. _[^:]*:/ || /^\.\. \|/ { next }
    /^[ \t]*:[a-zA-Z-]+:( |$)/ && !/`/ { next }
    /^[ \t]*\.\. [a-z-]+::/ {
      if ($0 ~ /(index|module|moduleauthor|sectionauthor|testsetup|testcleanup|highlight|toctree|include|currentmodule|raw|only|tabularcolumns|impl-detail)::/) next
      sub(/\.\. [a-z-]+:: */, "")
    }
    /^\.\. / { next }
    {
      line = $0
      gsub(/:[a-z]+(:[a-z]+)?:`/, "`", line)
      while (match(line, /`[^`<]*<[^`>]*>`_*/)) {
        title = substr(line, RSTART + 1, RLENGTH - 1); sub(/ *<.*$/, "", title)
        line = substr(line, 1, RSTART - 1) title substr(line, RSTART + RLENGTH)
      }
      gsub(/`_+/, "", line); gsub(/`~?/, "", line); gsub(/\*\*/, "", line)
      print line
    }'
}

# --- steps ------------------------------------------------------------------------------------

# Writes $text_dir/$1.txt from the command in the remaining arguments, unless it exists.
make_text() {
  local name=$1 file=$text_dir/$1.txt
  shift
  if [ -s "$file" ]; then
    say "text $name: $(megabytes "$file") (already there)"
    return
  fi
  "$@" >"$file.tmp"
  [ -s "$file.tmp" ] || die "the $name text came out empty: the package layout may have changed"
  mv "$file.tmp" "$file"
  say "text $name: $(megabytes "$file")"
}

# Each source unpacks its package in an assignment of its own: a failure there stops the
# script (set -e), where inside an argument list it would be ignored.
dictd_text() {  # dictd_text PACKAGE NAME
  local dir
  dir=$(unpack_package "$1")
  dictd_entries "$dir" "$2" | dictd_to_prose
}
gcide_text() { dictd_text dict-gcide gcide; }
foldoc_text() { dictd_text dict-foldoc foldoc; }
jargon_text() { dictd_text dict-jargon jargon; }
devil_text() { dictd_text dict-devil devil; }
wordnet_text() {
  local dir
  dir=$(unpack_package wordnet-base)
  wordnet_glosses "$dir"
}
fortune_text() {
  local dir
  dir=$(unpack_package fortunes)
  fortunes_text "$dir"
}
python_doc_text() {
  # python3-doc only depends on the versioned package (python3.11-doc on bookworm) that has them.
  local versioned
  versioned=$(apt-cache depends python3-doc 2>/dev/null | awk '/Depends: python3\.[0-9]+-doc/ {print $2; exit}')
  [ -n "$versioned" ] || { refresh_package_lists >&2; versioned=$(apt-cache depends python3-doc 2>/dev/null | awk '/Depends: python3\.[0-9]+-doc/ {print $2; exit}'); }
  [ -n "$versioned" ] || die "apt-cache cannot resolve python3-doc to a python3.X-doc package"
  local dir
  dir=$(unpack_package "$versioned")
  # Not -L: python3.X-doc/html is a link to python3.X/html, and each file must come once.
  find "$dir/usr/share/doc" -path '*/html/_sources/*' -name '*.rst.txt' | LC_ALL=C sort |
    while read -r f; do rst_to_text <"$f"; echo; done
}
perl_doc_text() {
  command -v pod2text >/dev/null 2>&1 ||
    die "pod2text is missing: install Debian's perl package (apt-get install perl)"
  local dir f
  dir=$(unpack_package perl-doc)
  # perltoc, perlapi, perlintern and perluniprops are generated indexes and tables, not prose.
  for f in "$dir"/usr/share/perl/*/pod/*.pod; do
    case $(basename "$f") in perltoc.pod | perlapi.pod | perlintern.pod | perluniprops.pod) continue ;; esac
    pod2text -w 100 "$f"
  done
}
kjv_text() {
  if [ -s data/kjv.txt ]; then cat data/kjv.txt; return; fi
  if command -v bible >/dev/null 2>&1; then bible -p /usr/lib gen1:1-rev22:21; return; fi
  local program text
  program=$(unpack_package bible-kjv)
  text=$(unpack_package bible-kjv-text)
  "$program/usr/bin/bible" -p "$text/usr/lib" gen1:1-rev22:21
}

make_text gcide gcide_text
make_text wordnet wordnet_text
make_text foldoc foldoc_text
make_text jargon jargon_text
make_text devil devil_text
make_text fortunes fortune_text
make_text python-doc python_doc_text
make_text perl-doc perl_doc_text
make_text kjv kjv_text
texts=("$text_dir"/{gcide,wordnet,foldoc,jargon,devil,fortunes,python-doc,perl-doc,kjv}.txt)
say "text total: $(megabytes "${texts[@]}") in ${#texts[@]} files"

# --- tokenizer and shard ----------------------------------------------------------------------

prepare=${PREPARE_DATA:-}
if [ -z "$prepare" ]; then
  say "building prepare_data (cpu preset)"
  cmake --preset cpu >/dev/null
  cmake --build --preset cpu -j "$(nproc)" --target prepare_data >/dev/null
  prepare=build/cpu/examples/prepare_data
fi
[ -x "$prepare" ] || die "prepare_data not found at '$prepare'"

if [ -s "$out/tokenizer.model" ]; then
  say "tokenizer: $out/tokenizer.model (already there)"
else
  # The sample sits beside prepare_data's output directory, not in it: prepare_data writes only
  # into a directory that holds nothing but its own files (data::OutputSet).
  sample=$text_dir/tokenizer-sample.txt
  sample_dir=$text_dir/tokenizer-sample
  rm -f "$sample_dir/sample.txt"  # where earlier versions of this script put it
  awk -v every="$sample_every" 'FNR % every == 0' "${texts[@]}" >"$sample"
  say "training the 32000-piece tokenizer on every ${sample_every}th line:" \
      "$(megabytes "$sample")"
  t0=$(date +%s)
  # prepare_data trains and also encodes the sample (a few seconds); only the model is kept.
  "$prepare" --text "$sample" --out "$sample_dir" --vocab 32000
  cp "$sample_dir/tokenizer.vocab" "$out/tokenizer.vocab"
  cp "$sample_dir/tokenizer.model" "$out/tokenizer.model.tmp"
  mv "$out/tokenizer.model.tmp" "$out/tokenizer.model"
  rm -f "$sample_dir"/tokens*.bin
  say "tokenizer trained in $(($(date +%s) - t0)) s"
fi

# Shards older than the tokenizer or a text (one was redone) are encoded again.
stale=no
shards=("$out"/tokens*.bin)
if [ -e "${shards[0]}" ]; then
  for input in "$out/tokenizer.model" "${texts[@]}"; do
    [ "$input" -nt "${shards[0]}" ] && stale=yes
  done
fi
if [ -e "${shards[0]}" ] && [ "$stale" = no ]; then
  say "shards: already there"
else
  say "encoding ${#texts[@]} files"
  text_args=()
  for t in "${texts[@]}"; do text_args+=(--text "$t"); done
  "$prepare" "${text_args[@]}" --out "$out" --tokenizer "$out/tokenizer.model"
  # prepare_data's new set (model, shards) replaced the directory: the vocab goes back in.
  if [ -f "$text_dir/tokenizer-sample/tokenizer.vocab" ]; then
    cp "$text_dir/tokenizer-sample/tokenizer.vocab" "$out/"
  fi
fi

# The token count is in each shard's header (u64 at byte 24).
tokens=0
bytes=0
for shard in "$out"/tokens*.bin; do
  tokens=$((tokens + $(od -An -t u8 -j 24 -N 8 "$shard" | tr -d ' ')))
  bytes=$((bytes + $(stat -c %s "$shard")))
done
mib=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}')
say "done: $tokens tokens in $(ls "$out"/tokens*.bin | wc -l) shard(s), $mib MiB, in $out" \
    "($(($(date +%s) - started)) s this run)"
awk -v b="$bytes" -v m="$max_shard_mib" 'BEGIN {exit !(b > m * 1048576)}' &&
  die "the shards total $mib MiB, over the $max_shard_mib MiB that may travel to the GPU machine"
exit 0
