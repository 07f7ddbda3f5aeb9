"""Performance evaluation through a client no one on the kefu team wrote:
Python grpcio with stubs generated from kefu's .proto files, against a
running `kefu up`; the Excel export opened with openpyxl.

Usage: python_performance.py ADDR PROTO_DIR HR_TOKEN LEAD_TOKEN AGENT_A_TOKEN AGENT_B_TOKEN
The tokens speak for py-hr (hr), py-lead (supervisor), py-a and py-b (agent).
HR puts the three people and their team in the staff directory, defines a
scheme, opens last month's cycle, closes it; each agent assesses themselves,
the lead reviews, HR closes calibration (the forced distribution refused
first), both acknowledge, HR finalises; the export is read back.
Exits non-zero on the first failed check.
"""
import datetime
import importlib
import io
import os
import sys
import tempfile

import grpc
import openpyxl
from grpc_tools import protoc


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def stubs(proto_dir):
    out = tempfile.mkdtemp(prefix="kefu-py-perf-")
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main([
        "protoc", f"-I{proto_dir}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}",
        "kefu/staff/v1/staff.proto", "kefu/performance/v1/performance.proto",
    ])
    check(rc == 0, "stubs generated for staff and performance")
    sys.path.insert(0, out)
    mods = [importlib.import_module(m) for m in (
        "kefu.staff.v1.staff_pb2", "kefu.staff.v1.staff_pb2_grpc",
        "kefu.performance.v1.performance_pb2", "kefu.performance.v1.performance_pb2_grpc")]
    return mods


def main():
    addr, proto_dir, hr_t, lead_t, a_t, b_t = sys.argv[1:7]
    spb, srpc, pb, prpc = stubs(proto_dir)
    channel = grpc.insecure_channel(addr)
    grpc.channel_ready_future(channel).result(timeout=10)
    staff = srpc.StaffServiceStub(channel)
    perf = prpc.PerformanceServiceStub(channel)
    as_ = lambda t: [("authorization", f"Bearer {t}")]
    hr, lead, a, b = as_(hr_t), as_(lead_t), as_(a_t), as_(b_t)

    for sid, name, position, manager in [("py-lead", "周主管", "客服主管", ""), ("py-a", "吴一", "客服专员", "py-lead"),
                                         ("py-b", "郑二", "客服专员", "py-lead")]:
        staff.CreatePerson(spb.CreatePersonRequest(person=spb.Person(
            staff_id=sid, name=name, position=position, hire_date="2024-05-06", manager=manager)), metadata=hr)
    staff.CreateTeam(spb.CreateTeamRequest(team=spb.Team(code="py-team", name="Python 组", kind=spb.TEAM_KIND_TEAM)), metadata=hr)
    for sid, is_lead in [("py-a", False), ("py-b", False), ("py-lead", True)]:
        staff.SetMembership(spb.SetMembershipRequest(team="py-team", staff_id=sid, member=True, lead=is_lead), metadata=hr)
    check(True, "HR puts a lead and two agents in the staff directory")

    def scheme(attitude_weight):
        return pb.DefineSchemeRequest(scheme=pb.Scheme(
            code="py_scheme", name="Python 方案", position="客服专员",
            groups=[pb.GroupWeight(group=pb.INDICATOR_GROUP_SERVICE_QUALITY, weight=50),
                    pb.GroupWeight(group=pb.INDICATOR_GROUP_ATTITUDE, weight=attitude_weight)],
            indicators=[
                pb.Indicator(code="resolution", name="解决率", group=pb.INDICATOR_GROUP_SERVICE_QUALITY,
                             source=pb.SOURCE_TICKETS_RESOLUTION_RATE, curve=pb.CURVE_LINEAR, floor=0, target=100, weight=50),
                pb.Indicator(code="peer", name="同事互评", group=pb.INDICATOR_GROUP_SERVICE_QUALITY,
                             source=pb.SOURCE_MANUAL_PEER_REVIEW, curve=pb.CURVE_DIRECT, weight=50),
                pb.Indicator(code="rating", name="主管评分", group=pb.INDICATOR_GROUP_ATTITUDE,
                             source=pb.SOURCE_MANUAL_SUPERVISOR_RATING, curve=pb.CURVE_DIRECT, weight=100),
            ]))
    try:
        perf.DefineScheme(scheme(40), metadata=hr)
        check(False, "weights that do not sum to 100% are refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "sum to 90%" in e.details(), f"weights summing to 90% refused ({e.details()})")
    check(perf.DefineScheme(scheme(50), metadata=hr).version == 1, "HR defines the scheme")

    first = datetime.date.today().replace(day=1)
    last_month = (first - datetime.timedelta(days=1)).strftime("%Y-%m")
    cycle = perf.OpenCycle(pb.OpenCycleRequest(cycle=pb.Cycle(
        kind=pb.PERIOD_KIND_MONTH, period=last_month, team="py-team", bonus_base_fen=300000,
        grades=[pb.GradeBand(grade="A", min_score=70, coefficient=120, max_share=50),
                pb.GradeBand(grade="B", min_score=0, coefficient=100)],
        honours=[pb.HonourRule(name="月度服务之星", top=1, min_grade="A")])), metadata=hr)
    check(cycle.evaluations == 2 and cycle.state == pb.CYCLE_STATE_OPEN, f"HR opens the {last_month} cycle for two agents")
    closed = perf.CloseCycle(pb.CloseCycleRequest(id=cycle.id), metadata=hr)
    check(closed.state == pb.CYCLE_STATE_REVIEW, "the cycle closes with a snapshot of the figures")

    evals = {e.staff_id: e for e in perf.ListEvaluations(pb.ListEvaluationsRequest(cycle_id=cycle.id), metadata=hr).evaluations}
    mine = perf.ListEvaluations(pb.ListEvaluationsRequest(cycle_id=cycle.id), metadata=a).evaluations
    check([e.staff_id for e in mine] == ["py-a"], "an agent sees only their own evaluation")
    for token, sid in [(a, "py-a"), (b, "py-b")]:
        perf.SubmitSelfAssessment(pb.SubmitSelfAssessmentRequest(
            evaluation_id=evals[sid].id, comment="@SUM(A1) 本月按时完成", scores=[pb.ManualScore(indicator="rating", score=95)]),
            metadata=token)
    for sid, peer, rating in [("py-a", 100, 100), ("py-b", 100, 100)]:
        perf.SubmitReview(pb.SubmitReviewRequest(evaluation_id=evals[sid].id, comment="表现良好",
                                                 scores=[pb.ManualScore(indicator="peer", score=peer),
                                                         pb.ManualScore(indicator="rating", score=rating)]), metadata=lead)
    check(True, "self-assessments and the lead's reviews are in")
    try:
        perf.CloseCalibration(pb.CloseCalibrationRequest(id=cycle.id), metadata=hr)
        check(False, "two A's of two break A ≤ 50%")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.FAILED_PRECONDITION and "A 及以上 2 人" in e.details(), f"the forced distribution is enforced ({e.details()})")
    perf.Calibrate(pb.CalibrateRequest(evaluation_id=evals["py-b"].id, grade="B", reason="强制分布"), metadata=hr)
    results = perf.CloseCalibration(pb.CloseCalibrationRequest(id=cycle.id), metadata=hr)
    check(results.state == pb.CYCLE_STATE_RESULTS, "calibration closes once the distribution holds")
    for token, sid in [(a, "py-a"), (b, "py-b")]:
        perf.Acknowledge(pb.AcknowledgeRequest(evaluation_id=evals[sid].id), metadata=token)
    done = perf.FinalizeCycle(pb.FinalizeCycleRequest(id=cycle.id), metadata=hr)
    check(done.state == pb.CYCLE_STATE_FINALIZED, "HR finalises the cycle")
    got = perf.GetEvaluation(pb.GetEvaluationRequest(id=evals["py-a"].id), metadata=a)
    check(got.grade == "A" and got.bonus_fen == 360000, f"py-a: grade A, bonus ¥3,000.00 × 120% = ¥3,600.00 ({got.grade}, {got.bonus_fen})")
    check(len(got.honours) == 1 and got.honours[0].name == "月度服务之星", "py-a earns the month's honour with a reason")

    export = perf.ExportCycle(pb.ExportCycleRequest(id=cycle.id), metadata=hr)
    book = openpyxl.load_workbook(io.BytesIO(export.content))
    sheet = book["绩效结果"]
    header = [c.value for c in sheet[1]]
    check(header[:3] == ["工号", "姓名", "团队"] and "奖金(元)" in header, "the export opens with Chinese headers")
    rows = {r[0]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    bonus = header.index("奖金(元)")
    check(rows["py-a"][bonus] == 3600 and rows["py-b"][bonus] == 3000, "the export has the bonuses in yuan")
    comment = rows["py-a"][header.index("自评意见")]
    check(isinstance(comment, str) and comment.startswith("'@SUM"), f"a comment that looks like a formula is text ({comment!r})")
    print("external python performance client: all checks passed")


if __name__ == "__main__":
    main()
