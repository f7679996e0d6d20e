"""One process, interleaved: torch fp32, onnxruntime fp32, onnxruntime int8 (2 threads)."""
import sys, time, statistics, resource
from dataclasses import replace
from pathlib import Path
import numpy as np, torch
from PIL import Image
from samtune.inference.predictor import Predictor
from samtune.inference.predictor import Predictor
from samtune.data.readers import read_image
from samtune.assets import mni_template
torch.set_num_threads(2)
def cpu():
    u=resource.getrusage(resource.RUSAGE_SELF); return u.ru_utime+u.ru_stime
paths={'torch': Predictor.from_model('lite_medsam'),
       'onnxruntime': Predictor.from_onnx('export', 2),
       'onnxruntime-int8': Predictor.from_onnx('export', 2, encoder_file='../enc_rr.onnx')}
D=Path('/work/shared/data')
img=np.asarray(Image.open(D/'MRI-Prostate/images/patient97/study97/volumn97/RUNMC23_14.png'))
m=np.asarray(Image.open(D/'MRI-Prostate/masks/RUNMC23_14.png'))>0
r,c=np.nonzero(m); box=(c.min(),r.min(),c.max(),r.max())
vol=read_image(mni_template('t1')).array; rng=paths['torch'].value_range(vol)
rows={k:{'p_wall':[],'p_cpu':[],'m_wall':[],'m_cpu':[]} for k in paths}
reps=int(sys.argv[1])
for k,p in paths.items(): p.predict_image(img, box=box)  # warm-up
for rep in range(reps):
    for k,p in paths.items():
        w,c0=time.perf_counter(),cpu(); p.predict_image(img, box=box); rows[k]['p_wall'].append(time.perf_counter()-w); rows[k]['p_cpu'].append(cpu()-c0)
        a=replace(p,mode='automatic'); s=vol[94+rep]
        w,c0=time.perf_counter(),cpu(); a.predict_images([s],value_range=rng); rows[k]['m_wall'].append(time.perf_counter()-w); rows[k]['m_cpu'].append(cpu()-c0)
        print(k, rep, {q:round(v[-1],2) for q,v in rows[k].items()}, flush=True)
print('peak RSS MB (all three in one process)', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)
med=lambda k,q: statistics.median(rows[k][q])
for k in paths:
    print(f"| {k} | {med(k,'p_wall'):.2f} | {med(k,'p_cpu'):.2f} | {med('torch','p_cpu')/med(k,'p_cpu'):.2f}x | {med(k,'m_wall'):.2f} | {med(k,'m_cpu'):.2f} | {med('torch','m_cpu')/med(k,'m_cpu'):.2f}x |")
