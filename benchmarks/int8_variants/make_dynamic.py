import onnx, sys, os
from onnxruntime.quantization import quantize_dynamic, QuantType
src='export/encoder.onnx'
m=onnx.load(src); g=m.graph
inits={i.name for i in g.initializer}
act=[n.name for n in g.node if n.op_type=='MatMul' and not any(i in inits for i in n.input)]
print(len(act),'act matmuls excluded')
variant=sys.argv[1]
kw=dict(op_types_to_quantize=['MatMul'], nodes_to_exclude=act, per_channel=True)
if variant=='rr': kw['reduce_range']=True
if variant=='u8u8': kw['weight_type']=QuantType.QUInt8
else: kw.setdefault('weight_type',QuantType.QInt8)
quantize_dynamic(src, f'enc_{variant}.onnx', **kw)
print(os.path.getsize(f'enc_{variant}.onnx'))
