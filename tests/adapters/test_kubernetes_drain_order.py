"""The drain order as node labels, with the REAL `kubernetes` client against the API stand-in: only changed
labels are written, counted from the end so that new nodes at the front relabel nobody else."""

from __future__ import annotations

from controller.adapters.kubernetes_drain_order import DRAIN_NEXT_LABEL, STAY_RANK_LABEL, drain_order_labels
from controller.ports import DrainOrderPublisher
from tests.adapters.test_kubernetes_actuator import WHO, clusters, kubeconfig, make_actuator  # noqa: F401
from tests.fakes.kube_api import MERGE_PATCH


def test_labels_count_from_the_end_and_mark_the_nodes_leaving_soon():
    assert drain_order_labels(["a", "b", "c"], 1) == {
        "a": {STAY_RANK_LABEL: "2", DRAIN_NEXT_LABEL: "true"},
        "b": {STAY_RANK_LABEL: "1", DRAIN_NEXT_LABEL: "false"},
        "c": {STAY_RANK_LABEL: "0", DRAIN_NEXT_LABEL: "false"},
    }


def test_order_is_written_as_node_labels_once_and_then_only_what_changed(clusters, make_actuator):  # noqa: F811
    actuator, _sleeps, _clock = make_actuator()
    assert isinstance(actuator, DrainOrderPublisher)
    fra = clusters["fra"]
    record = actuator.set_drain_order("fra", ["fra-node-1", "fra-node-2"], 1, **WHO)
    assert record is not None and record.changed and record.after["written"] == ["fra-node-1", "fra-node-2"]
    assert fra.node("fra-node-1")["metadata"]["labels"][DRAIN_NEXT_LABEL] == "true"
    assert fra.node("fra-node-2")["metadata"]["labels"][STAY_RANK_LABEL] == "0"
    assert fra.node("fra-node-2")["metadata"]["labels"]["topology.kubernetes.io/region"] == "fra"  # others kept
    assert all(w.content_type == MERGE_PATCH for w in fra.writes())
    writes = len(fra.writes())
    assert actuator.set_drain_order("fra", ["fra-node-1", "fra-node-2"], 1, **WHO) is None
    assert len(fra.writes()) == writes  # unchanged: no API call
    # A new node joins at the front and node-1 is no longer leaving: two nodes written, node-2 untouched.
    fra.add_node("fra-node-3")
    again = actuator.set_drain_order("fra", ["fra-node-3", "fra-node-1", "fra-node-2"], 0, **WHO)
    assert again is not None and sorted(again.after["written"]) == ["fra-node-1", "fra-node-3"]
    assert fra.node("fra-node-3")["metadata"]["labels"][STAY_RANK_LABEL] == "2"
    # A node removed since the plan was made is skipped, not an error.
    gone = actuator.set_drain_order("fra", ["fra-node-9", "fra-node-3", "fra-node-1", "fra-node-2"], 1, **WHO)
    assert gone is not None and "fra-node-9" not in gone.after["written"]
