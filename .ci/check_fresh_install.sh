#!/usr/bin/env bash
# Issue 19's fresh-install check: from an empty folder, run the README's commands with their defaults, as a
# new user would, on a non-editable install with no network (HF offline), and check what they wrote.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
t0=$(date +%s.%N); remomask --help >/dev/null; t1=$(date +%s.%N)
echo "remomask --help: $(python -c "print(f'{$t1 - $t0:.2f}')") s"
# README Quick start: generate (twice, into the default folder: each run gets its own)
remomask generate "a person waves with the left hand, tired"
remomask generate "a person jumps forward#3" --num-samples 2 --no-video
python "$here/check_generate.py" outputs/generate/001
python "$here/check_generate.py" outputs/generate/002 --seconds 3
test "$(ls outputs/generate)" = "$(printf '001\n002')"
# README Commands: retrieve, render, export-bvh
remomask retrieve "a person waves with the left hand" -k 5 | tee retrieve.txt
test "$(wc -l < retrieve.txt)" -eq 5
remomask render outputs/generate/001/sample_0.joints.npy -o wave.gif
remomask export-bvh outputs/generate/001/sample_0.joints.npy -o wave.bvh
head -c 9 wave.bvh | grep -q HIERARCHY
# README Python snippet
python - <<'PY'
from remomask import ReMoMaskPipeline

pipe = ReMoMaskPipeline.from_pretrained()                  # the bundled model; or from_pretrained("DIR")
out = pipe(["a person jogs in a small circle to the left"], seconds=5, seed=0)
print(out.joints[0].shape, out.lengths, out.retrieved[0][0]["caption"])
assert out.joints[0].shape == (100, 22, 3), out.joints[0].shape

long = pipe.compose([("walk forward", 4), ("turn left and wave", 3), ("stand still", 2)], seed=0)
assert long.joints.shape == (180, 22, 3) and list(long.boundaries) == [80, 140], (long.joints.shape, long.boundaries)
edit = pipe.edit(out.joints[0], "a person jumps", frames=(20, 60), seed=0)
assert (edit.joints[:20] == out.joints[0][:20]).all() and (edit.joints[60:] == out.joints[0][60:]).all()
PY
# README Commands: a timeline and an edit
remomask generate --timeline "walk forward:4 | turn left and wave:3 | stand still:2" --no-video
python "$here/check_generate.py" outputs/generate/003 --timeline
remomask edit outputs/generate/001/sample_0.joints.npy "a person jumps" --frames 20:60 --no-video
test -f outputs/edit/001/result.json
# README "Caption your own mocap": a folder of BVH files (the exported motion and two real CMU trials)
mkdir my_bvh && cp wave.bvh my_bvh/ && cp "$REMOMASK_SHARED/data/fixtures/cmu/131_01.bvh" "$REMOMASK_SHARED/data/fixtures/cmu/01_01.bvh" my_bvh/
remomask caption my_bvh/ | tee captions.txt
test "$(wc -l < captions.txt)" -eq 3
remomask caption my_bvh/ --top-k 3 --out captions.jsonl
test "$(wc -l < captions.jsonl)" -eq 3
remomask caption my_bvh/ --captioner trained --beam 3 | tee captions_trained.txt        # the bundle's trained captioner
test "$(wc -l < captions_trained.txt)" -eq 3
python -c "
from remomask import ReMoMaskPipeline
print(ReMoMaskPipeline.from_pretrained().caption(['wave.bvh']))"
remomask data import my_bvh/ --out my_library
remomask retriever build-db --dataset my_library --split all --out my_db
remomask retrieve "a person waves" --database my_db -k 3 --render my_hits/ | tee my_hits.txt
grep -q "wave" my_hits.txt
# a bad request: one line, exit 2
set +e; remomask generate "" 2>err.txt; rc=$?; set -e
test "$rc" -eq 2 && test "$(wc -l < err.txt)" -eq 1 && grep -q "^error: " err.txt
echo "installed package: $(du -sh "$(python -c 'import remomask, os; print(os.path.dirname(remomask.__file__))')" | cut -f1)"
echo "fresh-install check passed"
