# Sourced by the CLI tests that train: a small generated corpus and its token shards.
#
#   source "$(dirname "$0")/small_corpus.bash"
#   small_corpus BIN_DIR DIR LINES || exit 1
#
# Writes LINES generated sentences to DIR/text.txt and runs BIN_DIR/prepare_data on them into
# DIR/data (a 300-piece tokenizer); on failure prints prepare_data's log and returns 1.
small_corpus() {
  local bin="$1" dir="$2" lines="$3" i
  for i in $(seq 1 "$lines"); do
    echo "the $((i % 17)) quick brown foxes jump over $((i % 13)) lazy dogs while $((i % 7)) cats sleep"
  done > "$dir/text.txt"
  "$bin/prepare_data" --text "$dir/text.txt" --out "$dir/data" --vocab 300 > "$dir/prepare.log" 2>&1 ||
    { cat "$dir/prepare.log"; echo "FAIL: prepare_data"; return 1; }
}
