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
  # Ticks at the measured rank counts only, half a rank of margin so no point sits on the
  # border, the ideal (dashed) inside the axes, the legend outside the data.
  tics=$(tr -s ' ' '\n' <<<"$ranks" | awk 'NF { printf "%s%s", sep, $1; sep = ", " }')
  xrange=$(tr -s ' ' '\n' <<<"$ranks" | awk 'NF { if (lo == "" || $1 < lo) lo = $1; if ($1 > hi) hi = $1 }
    END { printf "[%g:%g]", lo - 0.5, hi + 0.5 }')
  for what in speedup efficiency; do
    if [ $what = speedup ]; then
      col=8 ideal=x yrange="[0:*]"
    else
      # 0..1.05 keeps the ideal off the border; a superlinear run widens it.
      col=9 ideal=1
      yrange=$(awk -F, 'NR > 1 && $9 > m { m = $9 } END { printf "[0:%g]", (m > 1 ? 1.05 * m : 1.05) }' "$csv")
    fi
    gnuplot <<GP
set terminal pngcairo size 800,500 noenhanced
set output "$out/$what.png"
set datafile separator ","
set key outside right top
set xlabel "ranks (x $threads threads)"
set ylabel "$what"
set xrange $xrange
set yrange $yrange
set xtics ($tics)
set grid
set title "$model, batch $batch per rank: $what"
plot "$csv" using 3:$col skip 1 with linespoints lw 2 pt 7 title "measured", \
     $ideal with lines dt 2 lw 2 lc "black" title "ideal"
GP
  done
  echo "plots: $out/speedup.png $out/efficiency.png" >&2
fi
