#!/usr/bin/env bash
# Strong/weak scaling sweep of data-parallel training on CPUs: runs
#   mpirun -np R osprey bench train --model M --batch B --threads T --steps S
# for every R in RANKS (batch B per rank) and writes results/metrics/speedup_table.csv plus
# speedup.png and efficiency.png (gnuplot). images/s counts all ranks; speedup and efficiency
# are against the first entry of RANKS.
# usage: bench/scaling.sh [-m MODEL] [-b BATCH] [-t THREADS] [-s STEPS] [-r "1 2 4"] [-o DIR]
#        (OSPREY=path/to/osprey, MPIRUN="mpirun --oversubscribe" to override)
set -euo pipefail
model=simple_cnn batch=128 threads=1 steps=20 ranks="1 2" out=results/metrics
while getopts "m:b:t:s:r:o:" opt; do
  case $opt in
    m) model=$OPTARG ;; b) batch=$OPTARG ;; t) threads=$OPTARG ;; s) steps=$OPTARG ;;
    r) ranks=$OPTARG ;; o) out=$OPTARG ;; *) sed -n 2,9p "$0"; exit 2 ;;
  esac
done
osprey=${OSPREY:-build/osprey}
mpirun=${MPIRUN:-mpirun --oversubscribe}
[ -x "$osprey" ] || { echo "scaling.sh: no osprey binary at $osprey (build first)" >&2; exit 1; }
mkdir -p "$out"
csv="$out/speedup_table.csv"
tmp="$csv.tmp"
echo "mode,model,ranks,threads,batch_per_rank,images_per_s,seconds_per_60k_epoch,speedup,efficiency" >"$tmp"
base=""
for r in $ranks; do
  json=$($mpirun -n "$r" "$osprey" bench train --model "$model" --batch "$batch" \
    --threads "$threads" --steps "$steps" | tail -n 1)
  ips=$(sed -E 's/.*"images_per_s":([0-9.eE+-]+).*/\1/' <<<"$json")
  [ -n "$base" ] || base=$(awk -v i="$ips" -v r="$r" 'BEGIN { print i / r }')
  awk -F, -v r="$r" -v t="$threads" -v m="$model" -v b="$batch" -v i="$ips" -v base="$base" \
    'BEGIN { s = i / base; printf "cpu-mpi+omp,%s,%d,%d,%d,%.1f,%.1f,%.3f,%.3f\n", m, r, t, b, i, 60000 / i, s, s / r }' >>"$tmp"
  echo "ranks $r: $json" >&2
done
mv "$tmp" "$csv"
cat "$csv"
if command -v gnuplot >/dev/null; then
  for what in speedup efficiency; do
    col=$([ $what = speedup ] && echo 8 || echo 9)
    gnuplot <<GP
set terminal pngcairo size 800,500 noenhanced
set output "$out/$what.png"
set datafile separator ","
set key top left
set xlabel "ranks (x $threads threads)"
set ylabel "$what"
set grid
set title "$model, batch $batch per rank: $what"
plot "$csv" using 3:$col skip 1 with linespoints lw 2 title "measured", \
     "$csv" using 3:($([ $what = speedup ] && echo '$3' || echo 1)) skip 1 with lines dt 2 title "ideal"
GP
  done
  echo "plots: $out/speedup.png $out/efficiency.png" >&2
fi
