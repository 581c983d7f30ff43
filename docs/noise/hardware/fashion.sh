set -x
python cli.py train-student --dataset fashion-mnist --qubits 8 --encoding angle --ansatz line --layers 6 --readout zz --epochs 20 --schedule onecycle --lr 0.02 --out runs/hw --name fm-l6zz --overwrite --quiet
A=runs/hw/fm-l6zz
mkdir -p runs/hw/study/fashion
python cli.py evaluate $A --device qkd.fused --limit 1000 && cp $A/evaluation-qkd.fused.json runs/hw/study/fashion/fm-l6zz-qkd.fused-1000.json
q() { b=$1; for m in none readout; do
  OMP_NUM_THREADS=1 python cli.py evaluate $A --device noisy:$b --optimization-level 2 --shots 1024 --limit 1000 --mitigation $m && \
    cp $A/evaluation-noisy-$b$([ $m = none ] || echo -$m)-o2.json runs/hw/study/fashion/fm-l6zz-noisy-$b$([ $m = none ] || echo -$m)-o2-1000.json
done; }
q fake_brisbane & q fake_torino & wait
