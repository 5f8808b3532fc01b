"""A live server (or every primary of a live cluster) taken as its replication snapshot into
a scratch folder, checked, and opened as a side.
"""

from __future__ import annotations

from toolkit import lifeline
from toolkit.check.backup import check_backup
from toolkit.diff.cluster_live import ClusterLive
from toolkit.diff.cluster_snapshot import snapshot_set
from toolkit.diff.rdb_side import SnapshotSide
from toolkit.diff.set_side import ClusterSnapshotSide, checked_set
from toolkit.diff.side import Progress, refuse_invalid
from toolkit.server.connect import Server
from toolkit.server.snapshot import take_snapshot
from toolkit.steps import no_progress, progress_of


def snapshot_side(server: Server, label: str, progress: Progress) -> SnapshotSide:
    """``server``'s replication snapshot streamed into a scratch folder and
    checked; refused (DiffError) when the check finds an error. Raises what
    :func:`~toolkit.server.snapshot.take_snapshot` raises."""
    directory = lifeline.scratch_dir("rbkit-snapshot-")
    try:
        dest = directory / "snapshot.rdb"
        with progress_of(progress or no_progress, f"snapshot of {label} ({server.address})") as bar:
            snap = take_snapshot(server, dest, progress=bar)
        with progress_of(progress or no_progress, f"checking {label}'s snapshot") as bar:
            result = check_backup(dest, progress=bar)
        snap.settled()
        refuse_invalid(result)
        return SnapshotSide(result, server.display, snap, directory)
    except BaseException:
        lifeline.remove_dir(directory)
        raise


def cluster_snapshot_side(cluster: ClusterLive, progress: Progress) -> ClusterSnapshotSide:
    """Every primary of ``cluster`` read as its replication snapshot, into a scratch backup set
    checked as ``check --cluster`` checks one."""
    directory = lifeline.scratch_dir("rbkit-snapshot-")
    try:
        shots = snapshot_set(cluster, directory, progress)
        check = checked_set(directory)
        for shot in shots:
            shot.snapshot.settled()
        return ClusterSnapshotSide(check, cluster.name, shots, directory)
    except BaseException:
        lifeline.remove_dir(directory)
        raise
