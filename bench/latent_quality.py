"""Latent quality on UCI digits (and MNIST when its cache is present).

One table: 5-NN accuracy (5-fold CV), trustworthiness (k=10), silhouette by
class, the latent's spread (VAEs) and seconds, for PCA, t-SNE, UMAP, the
widely copied AE recipe, aeviz's default AE with a 2-D latent (with the pixels
on one scale, as the app trains images, and with its default per-column
scaling; also without its neighbour term), aeviz's AE with a 16-D latent
followed by UMAP (with and without the neighbour term), the VAE with the
demo's weighting, and ELBO VAEs at beta 1, 0.1 and 0.01.

Every method sees the pixels as they are (PCA, t-SNE and UMAP on the raw
pixels; the autoencoders with ``scaling="global"``, one scale for all pixels)
because trustworthiness counts neighbours in pixel space; the per-column row
shows what standardising each pixel on its own costs.

Run: ``python bench/latent_quality.py [--quick]`` (writes
bench/results/latent_quality.json and prints a Markdown table for the README).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import timed, write_results  # noqa: E402
from bench.recipes import train_recipe  # noqa: E402


AE_2D = "aeviz AE 2-D, default settings, pixels on one scale"
AE_16_UMAP = "aeviz AE 16-D + UMAP"


def evaluate(X, y, name, make, Z_for_spread=None):
    from aeviz_core import latent_quality

    with timed() as t:
        coords, Z = make()
    q = latent_quality(X, coords, y, Z=Z)
    row = {"method": name, "knn5": round(q["knn_accuracy"], 3), "trustworthiness": round(q["trustworthiness"], 3),
           "silhouette": round(q["silhouette"], 3), "seconds": round(t(), 1),
           "latent_spread": None if q["spread"] is None else round(q["spread"]["mean_std"], 4)}
    print(row, flush=True)
    return row


def run(X, y, quick=False, seed=0):
    from aeviz_core import AutoencoderDetector, project_latent

    recipe_epochs = 100 if quick else 500
    vae_epochs = 60 if quick else 150
    rows = []

    def proj(method):
        return lambda: (project_latent(X, method=method, n_components=2, random_state=seed), None)

    def ae(scaling="global", **kw):  # one scale for all pixels, as the app trains images
        kw.setdefault("latent_dim", 2)  # the view model, unless a row says otherwise

        def make():
            det = AutoencoderDetector(random_state=seed, scaling=scaling, **kw).fit(X)
            Z = det.transform(X)
            return (Z if Z.shape[1] == 2 else project_latent(Z, "umap", random_state=seed)), Z
        return make

    rows.append(evaluate(X, y, "PCA", proj("pca")))
    rows.append(evaluate(X, y, "t-SNE", proj("tsne")))
    rows.append(evaluate(X, y, "UMAP", proj("umap")))
    rows.append(evaluate(X, y, f"AE recipe 64-32-2 sigmoid, batch 8, {recipe_epochs} epochs",
                         lambda: (train_recipe(X, recipe_epochs, seed), None)))
    rows.append(evaluate(X, y, AE_2D, ae()))
    rows.append(evaluate(X, y, "aeviz AE 2-D, default settings, per-column scaling", ae(scaling="channel")))
    rows.append(evaluate(X, y, "aeviz AE 2-D without the neighbour term, 150 epochs",
                         ae(neighbor_weight=0.0, epochs=150)))
    rows.append(evaluate(X, y, AE_16_UMAP, ae(latent_dim=16)))
    rows.append(evaluate(X, y, "aeviz AE 16-D, neighbour term 0.3 + UMAP",
                         ae(latent_dim=16, neighbor_weight=0.3)))
    rows.append(evaluate(X, y, "VAE, demo weighting (MSE mean + KL sum)",
                         ae(model="vae", vae_weighting="demo", epochs=vae_epochs)))
    for beta in (1.0, 0.1, 0.01):
        rows.append(evaluate(X, y, f"VAE, ELBO weighting, beta {beta}",
                             ae(model="vae", beta=beta, epochs=vae_epochs)))
    return rows


def goals(rows):
    by = {r["method"]: r for r in rows}
    ae2 = by[AE_2D]
    ae16, umap = by[AE_16_UMAP], by["UMAP"]
    demo = by["VAE, demo weighting (MSE mean + KL sum)"]
    elbo_best = max((r for r in rows if r["method"].startswith("VAE, ELBO")), key=lambda r: r["knn5"])
    return {
        "aeviz_ae_2d_knn_ge_0.93_trust_ge_0.975": ae2["knn5"] >= 0.93 and ae2["trustworthiness"] >= 0.975,
        "aeviz_ae16_umap_ge_raw_umap": ae16["knn5"] >= umap["knn5"] and ae16["trustworthiness"] >= umap["trustworthiness"],
        "demo_vae_blob_knn_lt_0.4_spread_lt_0.05": demo["knn5"] < 0.4 and demo["latent_spread"] < 0.05,
        "elbo_vae_separates_knn_ge_0.90": elbo_best["knn5"] >= 0.90,
        "best_elbo_vae": elbo_best["method"],
    }


def markdown(rows):
    lines = ["| method | 5-NN | trust. | silhouette | spread | s |", "|---|---|---|---|---|---|"]
    for r in rows:
        spread = "" if r["latent_spread"] is None else f"{r['latent_spread']:.3g}"
        lines.append(f"| {r['method']} | {r['knn5']:.3f} | {r['trustworthiness']:.3f} | {r['silhouette']:.3f} "
                     f"| {spread} | {r['seconds']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer epochs (recipe 100, VAEs 60)")
    args = parser.parse_args()
    from aeviz_core import load_mnist, load_uci_digits, mnist_cached

    X, y = load_uci_digits()
    rows = run(X, y, quick=args.quick)
    result = {"digits": rows, "goals": goals(rows), "quick": args.quick}
    if mnist_cached():
        Xm, ym = load_mnist(5000)
        result["mnist_5000"] = run(Xm.reshape(len(Xm), -1) * 16, ym, quick=True)
    print(markdown(rows))
    print(result["goals"])
    write_results("latent_quality", result)
