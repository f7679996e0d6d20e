import sys, time, statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np, torch
from dataclasses import replace
from prostate_val import prostate_val_slices
from samtune.inference.backends import OnnxSam, read_manifest
from samtune.inference.predictor import Predictor
from samtune.data.readers import read_image
from samtune.assets import mni_template
threads=2
torch.set_num_threads(threads)
folder=Path('export'); manifest=read_manifest(folder)
variants=sys.argv[1:]
paths={}
for v in variants:
    enc = folder/'encoder.onnx' if v=='fp32' else Path(f'enc_{v}.onnx')
    paths[v]=Predictor(OnnxSam(enc, folder/'decoder.onnx', manifest, threads),'prompted')
def dice(a,b):
    s=a.sum()+b.sum(); return 1.0 if s==0 else 2*(a&b).sum()/s
sec={v:[] for v in paths}; lab={v:[] for v in paths}; truths=[]
for image,truth,box in prostate_val_slices():
    truths.append(truth)
    for v,p in paths.items():
        t=time.perf_counter(); e,f=p.encode_images([image]); sec[v].append(time.perf_counter()-t)
        lab[v].append((p.prompt_logits(e,f[0],box)>0).numpy())
vol=read_image(mni_template('t1')).array
idx=[40,70,94,120,150]
rng=paths[variants[0]].value_range(vol)
mni={v:[] for v in paths}
for i in idx:
    for v,p in paths.items():
        a=replace(p,mode='automatic')
        t=time.perf_counter(); mni[v].append(a.predict_images([vol[i]],value_range=rng)[0]); sec[v].append(time.perf_counter()-t)
ref='fp32'
for v in paths:
    td=statistics.mean(dice(p,t) for p,t in zip(lab[v],truths))
    ag=min(dice(p,q) for p,q in zip(lab[v],lab[ref]))
    A=np.stack(mni[v]); B=np.stack(mni[ref])
    md=statistics.mean(dice(A==k,B==k) for k in (1,2,3))
    print(f'{v}: median s {statistics.median(sec[v]):.2f} prostate Dice truth {td:.4f} vs fp32 min {ag:.4f} mni mean-class Dice vs fp32 {md:.4f} labelled {int((A>0).sum())}',flush=True)
