"""Charts and tables for the compare report. Pure functions of a leaderboard table."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


# A chart of more bars is unreadable, and costs seconds to draw: beyond it, the
# table of the report and of the compare run lists every run.
CHART_RUNS = 30


def best_run_label(outcome, was_champion):
    """What the champion's rule (tracking/promotion.py) made of the leaderboard's best run:
    `outcome` is its decision, `was_champion` whether that run was the champion already."""
    if outcome == "kept":
        return "the champion, kept" if was_champion else "challenger, the champion kept"
    return {"first champion": "first champion", "promoted": "promoted to champion"}[outcome]


def decided_chart(board, metric):
    """The `chart(decision)` that tracking.record_comparison draws once the champion's
    rule has decided: the leaderboard chart, its best run labelled with the outcome."""
    def chart(decision):
        return leaderboard_chart(board, metric, best_run_label(decision.outcome, decision.challenger_was_champion))

    return chart


def leaderboard_chart(board, metric, best_label):
    """One bar per run of the best CHART_RUNS: its cross-validated mean of
    `metric`, with an error bar of ± one std over the folds, and its held-out
    score as a diamond. Runs are grouped by model family, the best run (the
    first row) highlighted and labelled `best_label` (best_run_label), in the
    legend too and in the figure's label, which a report shows as its alt text.

    Families are ordered by their best cross-validated mean, the runs of a
    family by their rank in `board`.
    """
    shown = f"Best {CHART_RUNS} of {len(board)} runs. " if len(board) > CHART_RUNS else ""
    board = board.head(CHART_RUNS)
    mean, std = f"cv_{metric}_mean", f"cv_{metric}_std"
    best_run = board.iloc[0]["run_id"]
    families = board.groupby("model_family", sort=False)[mean].max().sort_values(ascending=False, kind="stable").index
    colours = dict(zip(families, plt.get_cmap("tab10").colors))

    figure, ax = plt.subplots(figsize=(10, 1.5 + 0.3 * len(board)))
    positions, names, y = [], [], 0.0
    for family in families:
        for _, run in board[board["model_family"] == family].iterrows():
            is_best = run["run_id"] == best_run
            ax.barh(
                y, run[mean], xerr=run[std], color=colours[family], hatch="//" if is_best else None,
                edgecolor="black" if is_best else "none", linewidth=2 if is_best else 0,
                error_kw={"ecolor": "black", "capsize": 3, "elinewidth": 1},
            )
            ax.plot(run[metric], y, marker="D", markersize=5, color="black", markerfacecolor="white")
            label = f" {run[mean]:.4f} ± {run[std]:.4f}" + (f"  {best_label}" if is_best else "")
            ax.text(min(run[mean] + run[std], 1.0) + 0.005, y, label, va="center", fontsize=8,
                    fontweight="bold" if is_best else "normal")
            positions.append(y)
            names.append(run["run_name"])
            y += 1
        y += 0.5  # a gap between families

    ax.set_yticks(positions, names, fontsize=8)
    ax.invert_yaxis()
    low = max(0.0, min((board[mean] - board[std]).min(), board[metric].min()) - 0.1)
    ax.set_xlim(low, 1.25)  # room for the labels right of a perfect score
    ax.set_xticks([t for t in ax.get_xticks() if low <= t <= 1.0])
    ax.set_xlabel(metric)
    ax.set_title(f"{shown}{metric}: cross-validated mean ± std (bars), held-out (diamonds)", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[f]) for f in families]
    handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="white", hatch="//", edgecolor="black", linewidth=2))
    handles.append(plt.Line2D([], [], marker="D", color="black", markerfacecolor="white", linestyle="none"))
    ax.legend(handles, [*families, f"best: {best_label}", f"held-out {metric}"], loc="lower right", fontsize=8)
    figure.set_label(f"leaderboard of {len(board)} runs by {mean}; best, {board.iloc[0]['run_name']}: {best_label}")
    figure.tight_layout()
    return figure


def confusion_matrix_svg(y_true, y_pred, class_names):
    """The confusion matrix of `y_pred` against `y_true` (labels 0..n-1, named by
    `class_names`) as an SVG image: a cell per (true, predicted) pair with its count,
    shaded by its share of the true class's rows.

    Written directly rather than drawn with matplotlib: 1 ms instead of about 50 ms
    (figure, text layout, PNG), paid by every fit.
    """
    from html import escape

    from sklearn.metrics import confusion_matrix

    counts = confusion_matrix(y_true, y_pred, labels=list(range(len(class_names))))
    names = [escape(str(name)) for name in class_names]
    cell = max(48, 7 * max(len(str(name)) for name in class_names) + 12)
    left, top, n = cell + 28, 34, len(names)
    width, height = left + n * cell + 8, top + n * cell + 44
    label = f"confusion matrix of {counts.sum()} rows, {np.trace(counts)} on the diagonal"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{label}">',
        "<style>text{font-family:sans-serif;font-size:12px}</style>",
        f'<text x="{left}" y="16" font-weight="bold">Confusion matrix</text>',
        f'<text transform="translate(12 {top + n * cell / 2}) rotate(-90)" text-anchor="middle">true</text>',
        f'<text x="{left + n * cell / 2}" y="{height - 6}" text-anchor="middle">predicted</text>',
    ]
    for i, row in enumerate(counts):
        share = row / max(row.sum(), 1)
        y = top + i * cell
        parts.append(f'<text x="{left - 6}" y="{y + cell / 2}" text-anchor="end" dominant-baseline="central">{names[i]}</text>')
        for j, count in enumerate(row):
            x = left + j * cell
            shade = _blue(share[j])
            ink = "#fff" if share[j] > 0.5 else "#000"
            parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{shade}" stroke="#fff"/>')
            parts.append(f'<text class="count" x="{x + cell / 2}" y="{y + cell / 2}" text-anchor="middle" '
                         f'dominant-baseline="central" fill="{ink}">{count}</text>')
    for j, name in enumerate(names):
        parts.append(f'<text x="{left + (j + 0.5) * cell}" y="{top + n * cell + 16}" text-anchor="middle">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _blue(share):
    """From near white (share 0) to dark blue (share 1)."""
    low, high = (247, 251, 255), (8, 48, 107)
    return "#" + "".join(f"{round(a + (b - a) * float(share)):02x}" for a, b in zip(low, high))


def leaderboard_table(board, metric):
    """The leaderboard as the report shows it: rank, run, cross-validated mean ± std, held-out score."""
    mean, std = f"cv_{metric}_mean", f"cv_{metric}_std"
    return pd.DataFrame(
        {
            "run": board["run_name"].to_numpy(),
            "model family": board["model_family"].to_numpy(),
            f"cv {metric} (mean ± std)": [f"{m:.4f} ± {s:.4f}" for m, s in zip(board[mean], board[std])],
            f"held-out {metric}": board[metric].round(4).to_numpy(),
        },
        index=pd.RangeIndex(1, len(board) + 1, name="rank"),
    )


def rungs_chart(rungs, metric):
    """Successive halving's search: each candidate's cross-validated mean of
    `metric` on each rung it reached (x: the rung and its resource), a line
    per candidate, so a survivor's line runs on to the last rung."""
    mean = f"cv_{metric}_mean"
    figure, ax = plt.subplots(figsize=(8, 4.5))
    for _, path in rungs.sort_values("rung").groupby("candidate", sort=False):
        reached_end = path["rung"].max() == rungs["rung"].max()
        ax.plot(path["rung"], path[mean], marker="o", linewidth=2 if reached_end else 0.8,
                alpha=1.0 if reached_end else 0.4, label=path["candidate"].iloc[0] if reached_end else None)
    ticks = rungs.groupby("rung").agg(resource=("resource", "first"), fits=("candidate", "size"))
    ax.set_xticks(ticks.index, [f"rung {r}\n{t.fits} fits, resource {t.resource}" for r, t in ticks.iterrows()],
                  fontsize=8)
    ax.set_ylabel(f"cv {metric} (mean)")
    ax.set_title(f"successive halving: {mean} of each candidate, rung by rung", fontsize=10)
    ax.legend(fontsize=7, loc="lower right", title="last rung")
    figure.set_label(f"successive halving of {ticks['fits'].iloc[0]} candidates in {len(ticks)} rungs by {mean}")
    figure.tight_layout()
    return figure


def rungs_summary(rungs):
    """Candidates and resource per rung, and who went on: one row per rung."""
    return rungs.groupby("rung").agg(
        resource=("resource", "first"), candidates=("candidate", "size"), kept=("kept", "sum"),
    ).astype({"kept": int})


def as_image(figure):
    """`figure` as a PNG image whose alt text is the figure's label, closed so that the notebook shows it once."""
    import io

    from IPython.display import Image

    png = io.BytesIO()
    figure.savefig(png, format="png")
    plt.close(figure)
    return Image(png.getvalue(), alt=figure.get_label())


def rungs_scores(rungs, metric):
    """Each candidate's cross-validated mean of `metric` on each rung it reached, one column per
    rung (with its resource), those that went furthest first, then by their last score."""
    mean = f"cv_{metric}_mean"
    labels = rungs.groupby("rung")["resource"].first()
    table = rungs.pivot(index="candidate", columns="rung", values=mean)
    last = rungs.sort_values("rung").groupby("candidate").last()
    order = last.sort_values(["rung", mean], ascending=[False, False]).index
    return table.loc[order].rename(columns=lambda r: f"rung {r} ({labels[r]})").round(4)
