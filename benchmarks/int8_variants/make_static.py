import sys, numpy as np, onnx
from pathlib import Path
from PIL import Image
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantType, QuantFormat, CalibrationMethod
from samtune.data.preprocess import prepare_image, intensity_range
from samtune.data.readers import read_image
from samtune.assets import mni_template
variant=sys.argv[1]; ops=sys.argv[2].split(','); method=sys.argv[3]
P=Path('/work/shared/data/MRI-Prostate')
arrays=[]
for row in (P/'train_5shot.csv').read_text().split()[:4]:
    a=np.asarray(Image.open(P.parent/row.split(',')[0])); arrays.append((a, intensity_range(a,None,None)))
vol=read_image(mni_template('t1')).array
vr=intensity_range(vol,None,None)
for i in (60,94,130): arrays.append((vol[i], vr))
feeds=[{'images': prepare_image(a,256,'minmax',value_range=r)[0][None].numpy()} for a,r in arrays]
class R(CalibrationDataReader):
    def __init__(s): s.it=iter(feeds)
    def get_next(s): return next(s.it,None)
m=onnx.load('export/encoder.onnx'); g=m.graph
inits={i.name for i in g.initializer}
act=[n.name for n in g.node if n.op_type=='MatMul' and not any(i in inits for i in n.input)]
first_last=[n.name for n in g.node if n.op_type=='Conv' and (n.name.startswith('/patch_embed') or n.name.startswith('/neck'))]
print(len(act), first_last)
quantize_static('export/encoder.onnx', f'enc_{variant}.onnx', R(), quant_format=QuantFormat.QDQ,
   op_types_to_quantize=ops, nodes_to_exclude=act+first_last, per_channel=True, reduce_range=True,
   activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
   calibrate_method=getattr(CalibrationMethod, method), extra_options={'CalibTensorRangeSymmetric': False})
