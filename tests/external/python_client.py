"""A client no one on the kefu team wrote: Python grpcio, with stubs generated
from kefu's .proto files, against a running `kefu up`.

Usage: python_client.py ADDR TOKEN PROTO_DIR
Checks grpc.health.v1, lists services through reflection, creates a customer
and reads it back. Exits non-zero on the first failed check.
"""
import importlib
import os
import sys
import tempfile
import uuid

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_tools import protoc


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def generate(proto_dir):
    out = tempfile.mkdtemp(prefix="kefu-py-")
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main([
        "protoc",
        f"-I{proto_dir}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        "kefu/common/v1/common.proto",
        "kefu/customers/v1/customers.proto",
        "kefu/complaints/v1/complaints.proto",
        "kefu/training/v1/training.proto",
        "kefu/staff/v1/staff.proto",
    ])
    check(rc == 0, "stubs generated from proto/ with grpcio-tools")
    sys.path.insert(0, out)
    pb = importlib.import_module("kefu.customers.v1.customers_pb2")
    rpc = importlib.import_module("kefu.customers.v1.customers_pb2_grpc")
    return pb, rpc


def main():
    addr, token, proto_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    pb, rpc = generate(proto_dir)
    channel = grpc.insecure_channel(addr)
    grpc.channel_ready_future(channel).result(timeout=10)

    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service="kefu.customers.v1.CustomerService"))
    check(status.status == health_pb2.HealthCheckResponse.SERVING, "grpc.health.v1 reports SERVING")

    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    check("kefu.customers.v1.CustomerService" in services, f"reflection lists the customers service ({', '.join(services)})")

    stub = rpc.CustomerServiceStub(channel)
    meta = [("authorization", f"Bearer {token}")]
    try:
        stub.ListCustomers(pb.ListCustomersRequest())
        check(False, "a call without a token is refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNAUTHENTICATED, "a call without a token is refused")

    request_id = str(uuid.uuid4())
    created = stub.CreateCustomer(
        pb.CreateCustomerRequest(
            customer=pb.Customer(
                company_name="Python 客戶端測試有限公司",
                uscc="91110000600037341L",
                taxpayer_type=pb.TAXPAYER_TYPE_SMALL_SCALE,
                preferences=pb.Preferences(greeting_opt_in=True),
            ),
            contacts=[pb.Contact(name="張三", mobile="13800138000")],
            request_id=request_id,
        ),
        metadata=meta,
    )
    check(len(created.id) == 36 and created.contacts[0].primary, "CreateCustomer returns the customer with its primary contact")
    got = stub.GetCustomer(pb.GetCustomerRequest(id=created.id), metadata=meta)
    check(got.company_name == "Python 客戶端測試有限公司" and got.uscc == "91110000600037341L", "GetCustomer reads it back")

    try:
        stub.CreateCustomer(pb.CreateCustomerRequest(customer=pb.Customer(company_name="x", uscc="bad")), metadata=meta)
        check(False, "bad input is refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "uscc" in e.details(), f"bad input is refused naming the field ({e.details()})")
    # The complaints service, recorded and read back by a client no one here wrote.
    cpb = importlib.import_module("kefu.complaints.v1.complaints_pb2")
    crpc = importlib.import_module("kefu.complaints.v1.complaints_pb2_grpc")
    check("kefu.complaints.v1.ComplaintService" in services, "reflection lists the complaints service")
    complaints = crpc.ComplaintServiceStub(channel)
    cats = complaints.ListComplaintCategories(cpb.ListComplaintCategoriesRequest(), metadata=meta)
    check(any(c.label == "服务态度" for c in cats.categories), "ListComplaintCategories has Chinese labels")
    rec = complaints.RecordComplaint(
        cpb.RecordComplaintRequest(
            complaint=cpb.Complaint(
                source=cpb.COMPLAINT_SOURCE_CUSTOMER,
                channel=1,
                customer_id=created.id,
                category="timeliness",
                severity=cpb.SEVERITY_MEDIUM,
                description="申报延误",
            ),
            request_id=str(uuid.uuid4()),
        ),
        metadata=meta,
    )
    check(rec.number.startswith("TS-") and rec.state == cpb.COMPLAINT_STATE_RECEIVED, f"RecordComplaint numbers it ({rec.number})")
    try:
        complaints.TransitionComplaint(
            cpb.TransitionComplaintRequest(id=rec.number, action=cpb.COMPLAINT_ACTION_CLOSE, reason="x"), metadata=meta
        )
        check(False, "a step out of order is refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.FAILED_PRECONDITION and "ACKNOWLEDGE" in e.details(), "a step out of order names the allowed ones")
    # The training service: the catalogue is read by everyone, kept by HR.
    tpb = importlib.import_module("kefu.training.v1.training_pb2")
    trpc = importlib.import_module("kefu.training.v1.training_pb2_grpc")
    check("kefu.training.v1.TrainingService" in services, "reflection lists the training service")
    training = trpc.TrainingServiceStub(channel)
    listed = training.ListCourses(tpb.ListCoursesRequest(), metadata=meta)
    check(len(listed.courses) == 0, "ListCourses answers (an empty catalogue)")
    try:
        training.CreateCourse(tpb.CreateCourseRequest(course=tpb.Course(code="PY-01", title="x", topic=1, method=1, hours=1.0)), metadata=meta)
        check(False, "a supervisor does not keep the catalogue")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.PERMISSION_DENIED, "CreateCourse is HR's")
    try:
        training.ScheduleSession(tpb.ScheduleSessionRequest(session=tpb.Session(capacity=0)), metadata=meta)
        check(False, "an empty session is refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "session.course_id" in e.details(), "ScheduleSession names the bad fields")
    # The staff directory resolves what a name refers to.
    spb = importlib.import_module("kefu.staff.v1.staff_pb2")
    srpc = importlib.import_module("kefu.staff.v1.staff_pb2_grpc")
    check("kefu.staff.v1.StaffService" in services, "reflection lists the staff directory")
    resolved = srpc.StaffServiceStub(channel).Resolve(spb.ResolveRequest(refs=["不存在的人"]), metadata=meta)
    check(resolved.resolved[0].kind == spb.REF_KIND_UNKNOWN, "Resolve says an unknown name is nobody")
    print("external python client: all checks passed")


if __name__ == "__main__":
    main()
