"""Training-loss parity across a refactor: every micro-step loss (as float.hex) and the
trained weights' SHA-256 of five tiny runs (automatic/prompted box, point, hybrid; PNG and
NIfTI data; full and LoRA; augmentation on and off), written as JSON.

Run it with the code before and after a change and compare the files (issue 13: the
objectives' classes, the slice and box helpers):

    (cd OLD_CHECKOUT && PYTHONPATH=src python benchmarks/training_loss_parity.py /tmp/before.json /tmp/b)
    PYTHONPATH=src python benchmarks/training_loss_parity.py /tmp/after.json /tmp/a && cmp /tmp/before.json /tmp/after.json
"""
import hashlib, json, sys
from pathlib import Path
import numpy as np, SimpleITK as sitk, torch
sys.path.insert(0, str(Path.cwd() / "tests"))
from generated_data import write_disc_dataset
from samtune.engine import trainer as T
from samtune.engine.api import train
from samtune.engine.config import TrainConfig

out, root = Path(sys.argv[1]), Path(sys.argv[2])
root.mkdir(parents=True, exist_ok=True)
losses = []
orig = T.Trainer._micro_step
def hooked(self, micro):
    v = orig(self, micro); losses.append(v.hex()); return v
T.Trainer._micro_step = hooked
torch.set_num_threads(1)
train_png = write_disc_dataset(root / "train", 4, seed=1)
val_png = write_disc_dataset(root / "val", 2, seed=2)
# a small NIfTI volume pair with two labels (volume slicing + multi-class)
vol = root / "vol"; (vol / "images").mkdir(parents=True); (vol / "masks").mkdir(parents=True)
rng = np.random.default_rng(0)
for c in range(2):
    m = np.zeros((6, 48, 48), np.uint8); m[1:5, 10:20, 12:25] = 1; m[2:4, 30:40, 28 + c:40] = 2
    img = rng.normal(100, 20, m.shape) + m * 80
    sitk.WriteImage(sitk.GetImageFromArray(img.astype(np.int16)), str(vol / "images" / f"v{c}.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(m), str(vol / "masks" / f"v{c}.nii.gz"))
result = {}
for name, mode, prompt, data, val in [("auto", "automatic", "box", train_png, val_png),
                                      ("box", "prompted", "box", train_png, val_png),
                                      ("point", "prompted", "point", vol, None),
                                      ("hybrid", "prompted", "hybrid", vol, vol),
                                      ("auto_vol", "automatic", "box", vol, vol)]:
    losses.clear()
    c = TrainConfig()
    c.model.name = "tiny_vit_test"
    c.strategy.component, c.strategy.method = "decoder", "lora" if name == "auto_vol" else "full"
    c.task.mode, c.task.prompt = mode, prompt
    c.data.train, c.data.val = str(data), (str(val) if val else None)
    c.data.augment = name in ("box", "hybrid")
    c.optim.steps, c.optim.lr, c.optim.batch_size = 4, 3e-3, 2
    c.eval.every, c.run.log_every, c.run.checkpoint_every, c.run.device = 2, 1, 4, "cpu"
    train(c, root / f"run_{name}")
    w = root / f"run_{name}" / "weights"
    from safetensors.torch import load_file
    h = hashlib.sha256()
    for p in sorted(w.glob("*.safetensors")):
        for k, t in sorted(load_file(str(p)).items()):
            h.update(k.encode()); h.update(t.contiguous().numpy().tobytes())
    digest = h.hexdigest()
    summary = json.loads((root / f"run_{name}" / "summary.json").read_text())
    result[name] = {"losses": list(losses), "weights_sha256": digest, "best_val_dice": summary.get("best_val_dice")}
out.write_text(json.dumps(result, indent=1))
print(json.dumps({k: (v["losses"][:2], v["best_val_dice"]) for k, v in result.items()}))
