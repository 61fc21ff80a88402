"""Charts for the compare report. Pure functions of a leaderboard table."""
import matplotlib.pyplot as plt


def leaderboard_chart(board, metric):
    """One bar per run, grouped by model family, the best run (the first row) highlighted.

    Families are ordered by their best score, the runs of a family by score.
    """
    best_run = board.iloc[0]["run_id"]
    families = board.groupby("model_family", sort=False)[metric].max().sort_values(ascending=False).index
    colours = dict(zip(families, plt.get_cmap("tab10").colors))

    figure, ax = plt.subplots(figsize=(10, 1.5 + 0.3 * len(board)))
    positions, names, y = [], [], 0.0
    for family in families:
        for _, run in board[board["model_family"] == family].sort_values(metric, ascending=False, kind="stable").iterrows():
            is_best = run["run_id"] == best_run
            ax.barh(
                y, run[metric], color=colours[family], hatch="//" if is_best else None,
                edgecolor="black" if is_best else "none", linewidth=2 if is_best else 0,
            )
            label = f" {run[metric]:.4f}" + ("  champion" if is_best else "")
            ax.text(run[metric], y, label, va="center", fontsize=8, fontweight="bold" if is_best else "normal")
            positions.append(y)
            names.append(run["run_name"])
            y += 1
        y += 0.5  # a gap between families

    ax.set_yticks(positions, names, fontsize=8)
    ax.invert_yaxis()
    low = max(0.0, board[metric].min() - 0.1)
    ax.set_xlim(low, 1.12)  # room for the labels right of a perfect score
    ax.set_xticks([t for t in ax.get_xticks() if low <= t <= 1.0])
    ax.set_xlabel(metric)
    ax.set_title(f"{metric} on the held-out split, by model family")
    ax.legend([plt.Rectangle((0, 0), 1, 1, color=colours[f]) for f in families], families, loc="lower right", fontsize=8)
    figure.tight_layout()
    return figure
