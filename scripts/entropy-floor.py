#!/usr/bin/env python3
"""The least bytes per point any codec can spend on `TallyWorkloads.SyntheticRun` (issue #19), each series coded by
itself: -log2 P(float32 bin | the generator's exact model), averaged over 1 M rows, plus log2(11) bits per row of
timestamps. Second figure: the same with the rows' series coded together — `ema_loss` is a float32 EMA of
`train_loss` in the same row, so given that row's `train_loss` and its own previous value it costs nothing. Simulates the same distributions (not the same random numbers). Steps, rollups, indexes and headers are
not counted, so a real store must end above the printed floor.

Usage: .venv-interop/bin/python scripts/entropy-floor.py
"""
import numpy as np
from scipy.stats import norm, binom
rows=1_000_000
rng=np.random.default_rng(1)
i=np.arange(rows); prog=i/rows
clean=2.2*np.exp(-4*prog)+0.15
def f32bin(x):
    x=x.astype(np.float32); lo=np.nextafter(x,np.float32(-np.inf)); hi=np.nextafter(x,np.float32(np.inf))
    x=x.astype(np.float64); return (x+lo.astype(np.float64))/2,(x+hi.astype(np.float64))/2
def gauss_bits(x,mu,s):
    a,b=f32bin(x); p=norm.cdf(b,mu,s)-norm.cdf(a,mu,s); return -np.log2(np.maximum(p,1e-300))
loss=(clean*(1+0.06*rng.standard_normal(rows))).astype(np.float32)
b_loss=gauss_bits(loss,clean,0.06*clean).mean()
ema=np.empty(rows,np.float32); e=np.float32(loss[0])
for k in range(rows):
    e = loss[0] if k==0 else np.float32(0.98)*e+np.float32(0.02)*loss[k]; ema[k]=e
prev=np.concatenate([[ema[0]],ema[:-1]]).astype(np.float64)
b_ema=gauss_bits(ema[1:],0.98*prev[1:]+0.02*clean[1:],0.02*0.06*clean[1:]).mean()
p=0.2+0.7*(1-np.exp(-5*prog)); n=256
k=np.clip(np.round(256*p+np.sqrt(256*p*(1-p))*rng.standard_normal(rows)),0,256)
b_acc=(-np.log2(np.maximum(binom.pmf(k,n,p),1e-300))).mean()
L=1.5*np.exp(-2*prog)+0.3
g=(L*np.exp(0.25*rng.standard_normal(rows))).astype(np.float32)
a,b=f32bin(g); P=norm.cdf(np.log(b/L),0,0.25)-norm.cdf(np.log(a/L),0,0.25)
b_g=(-np.log2(P*0.999)).mean()+0.0114  # + the 0.1 % spike flag
thr=(1500*(1+0.02*rng.standard_normal(rows))).astype(np.float32)
b_thr=gauss_bits(thr,1500,30).mean()
ts=np.log2(11)
vals=[b_loss,b_ema,0,b_acc,b_g,b_thr,0]
print("bits per value:",dict(zip(["train_loss","ema_loss","lr","batch_acc","grad_norm","throughput","epoch"],[round(v,2) for v in vals])))
print("bytes/value:",[round(v/8,3) for v in vals])
tot=(sum(vals)+ts)/8/7
print("floor bytes/point (values + timestamps, no steps/rollups/headers), each series by itself: %.3f"%tot)
# ema_loss given train_loss of its row: determined exactly (the generator's own float32 arithmetic, checked here).
e=np.float32(loss[0]); exact=True
for k in range(1,rows):
    e=np.float32(0.98)*e+np.float32(0.02)*loss[k]
    if e!=ema[k]: exact=False; break
print("ema_loss = f32(0.98*prev + 0.02*train_loss) exactly:", exact)
print("floor bytes/point, the rows' series coded together: %.3f"%((sum(vals)-b_ema+ts)/8/7))
