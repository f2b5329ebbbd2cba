"""Makes Tests/EmoNNTests/Fixtures/torch_parity.safetensors, the PyTorch
reference for EmoNN's parity test: a small network using every layer kind,
its weights and inputs, and torch's outputs and gradients.

Run once with torch installed (CI never does; the fixture is committed):
    python scripts/torch_reference.py [output path]
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file


class ParityNet(nn.Module):
    # Attribute names are EmoNN's property names in snake_case.
    def __init__(self):
        super().__init__()
        # No bias before a training-mode batch norm: its true gradient is 0, and
        # AdamW would turn the rounding noise of both libraries into ±lr steps.
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2)
        self.fc1 = nn.Linear(16, 6, bias=False)
        self.bn2 = nn.BatchNorm1d(6)
        self.lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(8, 3, batch_first=True, bidirectional=True)
        self.score = nn.Linear(6, 1, bias=False)  # softmax is shift-invariant: a bias would have gradient 0
        self.head = nn.Linear(10, 4)

    def forward(self, x, s, mask):
        h = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)               # [2,4,4,4]
        h = F.avg_pool2d(F.gelu(self.conv2(h)), 2, stride=1)                 # [2,4,3,3]
        h = F.adaptive_avg_pool2d(h, (2, 2)).flatten(1)                      # [2,16]
        a = torch.tanh(self.bn2(self.fc1(h)))                                # [2,6]
        q, _ = self.lstm(s)                                                  # [2,5,8]
        q, _ = self.gru(q)                                                   # [2,5,6]
        logits = self.score(q).squeeze(-1).masked_fill(mask == 0, float("-inf"))
        w = torch.softmax(logits, dim=1)                                     # masked softmax
        b = torch.sigmoid((w.unsqueeze(-1) * q).sum(dim=1))                  # [2,6]
        t = torch.stack([a, b], dim=1).transpose(1, 2).reshape(2, 12)[:, :10]
        extra = ((a - b) * a / (b * b + 1)).mean() + torch.cat([a, b], 1).sum(0).mean() * 0.01
        return self.head(t), extra


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/EmoNNTests/Fixtures/torch_parity.safetensors"
    torch.manual_seed(1234)
    net = ParityNet()
    with torch.no_grad():  # non-trivial batch-norm affine parameters
        for bn in (net.bn1, net.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 2, 8, 8, requires_grad=True)
    s = torch.randn(2, 5, 3, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.float32)
    targets = torch.tensor([3, 1])
    class_weight = torch.tensor([0.5, 1.0, 1.5, 2.0])
    params = {k: v.detach().clone() for k, v in net.state_dict().items()}

    logits, extra = net(x, s, mask)
    ce = F.cross_entropy(logits, targets, weight=class_weight, label_smoothing=0.1)
    loss = ce + extra
    loss.backward()

    tensors = {f"param.{k}": v for k, v in params.items()}
    tensors.update({"input.x": x.detach(), "input.s": s.detach(), "input.mask": mask,
                    "input.class_weight": class_weight, "out.logits": logits.detach(),
                    "out.loss": loss.detach().reshape(1), "grad.input.x": x.grad, "grad.input.s": s.grad})
    for name, p in net.named_parameters():
        tensors[f"grad.{name}"] = p.grad.clone()  # clipping below scales p.grad in place
    for name, b in net.named_buffers():
        tensors[f"after.{name}"] = b.detach().clone()
    # Optimizer parity: clip by global norm, then three AdamW steps on these gradients.
    tensors["out.grad_norm"] = torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5).reshape(1)
    opt = torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=0.1)
    for _ in range(3):
        opt.step()
    for name, p in net.named_parameters():
        tensors[f"adamw.{name}"] = p.detach().clone()
    tensors = {k: v.contiguous().float() for k, v in tensors.items()}
    tensors["input.targets"] = targets.long()
    save_file(tensors, out, metadata={"torch": torch.__version__, "made_by": "scripts/torch_reference.py"})
    print(f"wrote {len(tensors)} tensors to {out}; loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
