"""The Model page's list of earlier trainings: the stopped training jobs in the work folder (a new session's
or another session's), each to open (its curves, its best checkpoint to use, Resume) or to delete."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import training_jobs
from core.errors import JobError
from pages.components import state, ui

#: the most trainings listed (newest first); the others are counted
SHOWN = 20


def show(jobs_root: Path, followed: str | None, running: Path | None) -> None:
    """An expander listing the stopped trainings under ``jobs_root`` but ``followed`` (the job this session's
    panel shows). Open makes a training the one followed (refused while ``running``, whose panel is shown);
    Delete, after a confirmation, removes its folder."""
    notice = state.get(state.TRAININGS_NOTICE)
    state.put(state.TRAININGS_NOTICE, None)
    if notice:
        (st.success if notice[0] == "success" else st.error)(notice[1])
    found = training_jobs.earlier_trainings(jobs_root, skip=[followed] if followed else [])
    if not found:
        return
    total_mb = sum(t.size_bytes for t in found) / 1e6
    with st.expander(f"Earlier trainings ({len(found)}, {total_mb:.1f} MB)"):
        st.caption("Trainings that have stopped, newest first, from this session or others (the work folder "
                   f"{ui.plain(str(jobs_root))}). Open one to see its curves and use its best checkpoint, or "
                   "delete those you no longer need to free disk space.")
        for training in found[:SHOWN]:
            _row(training, jobs_root, running)
        if len(found) > SHOWN:
            st.caption(f"And {len(found) - SHOWN} older ones, not listed.")


def _row(training: training_jobs.Training, jobs_root: Path, running: Path | None) -> None:
    """One training: its line and note, its Open and Delete buttons."""
    name = training.job_dir.name
    words, open_col, delete_col = st.columns([6, 1, 1], vertical_alignment="center")
    words.markdown(ui.plain(training.words()) + ("" if training.best is not None else " (no checkpoint kept)"))
    if training.note:
        words.caption(ui.plain(training.note))
    if open_col.button("Open", key=f"open_training_{name}", disabled=running is not None,
                       help="a training is running: its panel is shown above; open this one once it has stopped"
                       if running is not None else "show its curves above, with its best checkpoint to use"):
        state.put(state.JOB_DIR, str(training.job_dir))
        state.put(state.SCROLL_TO, "job")
        st.rerun()
    with delete_col.popover("Delete", help="remove its checkpoints, history and log for good"):
        st.write(f"Delete the {ui.plain(training.title)} and its checkpoints for good?")
        if st.button("Delete for good", key=f"delete_training_{name}", type="primary"):
            try:
                training_jobs.delete_training(training.job_dir, jobs_root, state.get(state.MODEL_PATH),
                                              state.models_used_elsewhere())
            except JobError as err:
                state.put(state.TRAININGS_NOTICE, ["error", ui.sentence(str(err))])
            else:
                state.put(state.TRAININGS_NOTICE, ["success", f"Deleted the {training.title}."])
            st.rerun()
