"""moto_server for the local cloud and the tests, with five fixes to moto 5.2.1.

1. moto's Step Functions interpreter deep-copies a state machine at every
   StartExecution, and the copy includes the machine's earlier executions,
   whose worker threads hold locks that cannot be copied. The first
   execution of a machine therefore runs and the second fails with "cannot
   pickle '_thread.RLock' object". The copy only freezes the machine's
   definition for the new execution, so it is made without the list.
2. moto's CloudFormation creates every AWS::ElasticLoadBalancingV2::
   LoadBalancer as an application load balancer, ignoring Type, so a
   network load balancer's TCP listener is refused. The fix passes Type on.
3. moto_server serves requests on several threads, and its DynamoDB
   backend checks a write's condition and applies the write without a
   lock, so two racing conditional writes can both succeed. DynamoDB
   applies each conditional write atomically; the node store relies on it.
   The fix serialises DynamoDB's writes.
4. moto's Step Functions interpreter sleeps for real between a Retry's
   attempts (IntervalSeconds times BackoffRate per attempt, with jitter),
   which is minutes for the workflow's persistent retriers. With
   LOCALCLOUD_MAX_RETRY_SECONDS set, each of those sleeps is capped at that
   many seconds, as the local cloud caps Wait states
   (MEDIASCALE_MAX_WAIT_SECONDS): the attempts and their order are AWS's,
   only the pauses between them are shorter.
5. moto's Route53 accepts a DELETE of a record set that no longer exists,
   or whose values changed, as long as the zone's journal once held it,
   and then applies the rest of the batch. Route53 refuses the whole batch
   with InvalidChangeBatch ("Tried to delete resource record set ... but
   it was not found" / "... but the values provided do not match the
   current values"): a batch of DELETE then CREATE is a compare-and-swap,
   which the load-aware DNS weights rely on so that they never bring back
   a record a drain took away. The fix checks every DELETE against the
   current record sets before moto applies anything.

Usage is moto_server's: python3 scripts/moto_server.py -H 127.0.0.1 -p PORT

With --port-file PATH instead of -p, the server binds a port the kernel
chooses and writes its number to PATH once it listens. The tests and the
local cloud start their servers this way: a port chosen by the caller and
bound a second later, once Python has started, may meanwhile be taken by
another server starting at the same time, and the caller would then talk
to that one.
"""

import argparse
import copy
import functools
import os
import sys
import threading
import time
import types

from moto.dynamodb.models import DynamoDBBackend
from moto.elbv2.models import FakeLoadBalancer, elbv2_backends
from moto.route53.exceptions import Route53ClientError
from moto.route53.models import Route53Backend
from moto.server import DomainDispatcherApplication, create_backend_app, main
from moto.stepfunctions.models import StateMachineInstance


def _deepcopy_without_executions(self, memo):
    cls = self.__class__
    clone = cls.__new__(cls)
    memo[id(self)] = clone
    for key, value in self.__dict__.items():
        setattr(clone, key, [] if key == "executions" else copy.deepcopy(value, memo))
    return clone


StateMachineInstance.__deepcopy__ = _deepcopy_without_executions


def _load_balancer_from_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    properties = cloudformation_json["Properties"]
    return elbv2_backends[account_id][region_name].create_load_balancer(
        properties.get("Name", resource_name),
        properties.get("SecurityGroups"),
        properties.get("Subnets"),
        scheme=properties.get("Scheme", "internet-facing"),
        loadbalancer_type=properties.get("Type", "application"),
    )


FakeLoadBalancer.create_from_cloudformation_json = classmethod(_load_balancer_from_cloudformation)

_dynamodb_writes = threading.Lock()


def _atomic(write):
    @functools.wraps(write)
    def wrapper(*args, **kwargs):
        with _dynamodb_writes:
            return write(*args, **kwargs)

    return wrapper


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))

class _RecordSetMismatch(Route53ClientError):
    def __init__(self, message):
        super().__init__("InvalidChangeBatch", message)


def _fqdn(name):
    return name if name.endswith(".") else name + "."


def _describe(rrset):
    return "[name='%s', type='%s', set-identifier='%s']" % (_fqdn(rrset["Name"]), rrset.get("Type"), rrset.get("SetIdentifier"))


def _same(current, wanted):
    values = [r["Value"] if isinstance(r, dict) else r for r in wanted.get("ResourceRecords", [])]
    return (
        str(current.ttl) == str(wanted.get("TTL", current.ttl))
        and list(current.records) == values
        and str(current.weight) == str(wanted.get("Weight", current.weight))
    )


def _checked_changes(change):
    @functools.wraps(change)
    def wrapper(self, zoneid, change_list):
        zone = self.get_hosted_zone(zoneid)
        for value in change_list:
            if value["Action"] != "DELETE":
                continue
            wanted = value["ResourceRecordSet"]
            found = [
                r
                for r in zone.rrsets
                if _fqdn(r.name) == _fqdn(wanted["Name"]) and r.type == wanted.get("Type") and r.set_identifier == wanted.get("SetIdentifier")
            ]
            if not found:
                raise _RecordSetMismatch("Tried to delete resource record set %s but it was not found" % _describe(wanted))
            if not _same(found[0], wanted):
                raise _RecordSetMismatch("Tried to delete resource record set %s but the values provided do not match the current values" % _describe(wanted))
        return change(self, zoneid, change_list)

    return wrapper


Route53Backend.change_resource_record_sets = _checked_changes(Route53Backend.change_resource_record_sets)

_max_retry = os.environ.get("LOCALCLOUD_MAX_RETRY_SECONDS")
if _max_retry:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    _cap = float(_max_retry)
    retrier_decl.time = types.SimpleNamespace(sleep=lambda seconds: time.sleep(min(seconds, _cap)))


def _serve_on_a_chosen_port(argv):
    """Serves as moto_server does, on a port the kernel chooses, and writes
    the port to --port-file once the server listens."""
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args(argv)
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto_server's main sets it
    server = make_server(args.host, 0, app, threaded=True)
    # moto's Step Functions calls Lambda on localhost:MOTO_PORT unless the
    # caller pointed MOTO_PORT elsewhere.
    os.environ.setdefault("MOTO_PORT", str(server.port))
    partial = args.port_file + ".partial"
    with open(partial, "w") as f:
        f.write(str(server.port))
    os.replace(partial, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    if "--port-file" in sys.argv:
        _serve_on_a_chosen_port(sys.argv[1:])
    else:
        main()
