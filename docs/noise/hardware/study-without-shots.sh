# Without shots: exact noisy probabilities, so what zne removes is not hidden by the shot noise it amplifies.
set -x
A=runs/hw/l6zz-e20-oc
b=fake_brisbane
j() { cp "$1"/evaluation-"$2".json runs/hw/study/$b/$(basename "$1")-"$2"-"$3"-exact-probs.json; }
for m in none zne; do
  python cli.py evaluate $A --device noisy:$b --optimization-level 2 --limit 1000 --mitigation $m && \
    j $A noisy-$b$([ $m = none ] || echo -$m)-o2 1000
done
