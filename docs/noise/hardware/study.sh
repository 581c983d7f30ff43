# Issue 27's hardware study, first 1,000 MNIST test images (8-qubit line students) and 100 (the amplitude one).
# Usage: bash runs/hw/study.sh BACKEND [AMPLITUDE_RUN]   (one queue per backend; two in parallel on two cores)
set -x
b=$1
A=runs/hw/l6zz-e20-oc
B=runs/hw/mnist-8q-angle-line4
AMP=$2
E="python cli.py evaluate"
mkdir -p runs/hw/study/$b
j() { cp "$1"/evaluation-"$2".json runs/hw/study/$b/$(basename "$1")-"$2"-"$3".json; }
$E $A --device qkd.fused --limit 1000 && j $A qkd.fused 1000
for m in none readout zne; do
  $E $A --device noisy:$b --optimization-level 2 --shots 1024 --limit 1000 --mitigation $m && \
    j $A noisy-$b$([ $m = none ] || echo -$m)-o2 1000
done
$E $A --device noisy:$b --optimization-level 2 --shots 1024 --limit 1000 --recalibrate 500 && j $A noisy-$b-recal500-o2 1000
if [ "$b" = fake_brisbane ]; then
  $E $B --device qkd.fused --limit 1000 && j $B qkd.fused 1000
  for m in none readout zne; do
    $E $B --device noisy:$b --shots 1024 --limit 1000 --mitigation $m && j $B noisy-$b$([ $m = none ] || echo -$m) 1000
  done
  $E $B --device noisy:$b --shots 1024 --limit 1000 --recalibrate 500 && j $B noisy-$b-recal500 1000
fi
if [ -n "$AMP" ]; then
  $E $AMP --device qkd.fused --limit 100 && j $AMP qkd.fused 100
  for m in none zne; do
    $E $AMP --device noisy:$b --optimization-level 2 --shots 1024 --limit 100 --mitigation $m && \
      j $AMP noisy-$b$([ $m = none ] || echo -$m)-o2 100
  done
  $E $AMP --device noisy:$b --optimization-level 2 --shots 1024 --limit 100 --recalibrate 200 && \
    j $AMP noisy-$b-recal200-o2 100
fi
