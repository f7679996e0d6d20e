import sys, time, statistics, numpy as np, onnxruntime as ort
threads=int(sys.argv[1]); variants=sys.argv[2:]
sess={}
for v in variants:
    so=ort.SessionOptions(); so.intra_op_num_threads=threads; so.log_severity_level=3
    so.add_session_config_entry('session.intra_op.allow_spinning','0')
    sess[v]=ort.InferenceSession('export/encoder.onnx' if v=='fp32' else f'enc_{v}.onnx', so, providers=['CPUExecutionProvider'])
x=np.random.RandomState(0).rand(1,3,256,256).astype(np.float32)
for s in sess.values(): s.run(None,{'images':x})
cpu={v:[] for v in sess}; wall={v:[] for v in sess}
for r in range(int(2)):
    for v,s in sess.items():
        c=time.process_time(); w=time.perf_counter(); s.run(None,{'images':x})
        cpu[v].append(time.process_time()-c); wall[v].append(time.perf_counter()-w)
for v in sess: print(v, 'cpu s', round(statistics.median(cpu[v]),3), 'wall s', round(statistics.median(wall[v]),3), flush=True)
