//! Exams: the question bank, exams drawing papers at random from tagged
//! pools, attempts with a deadline the server keeps, scoring kept with the
//! paper as drawn, marking of short answers, and item analysis.
use std::collections::{BTreeMap, HashSet};

use kefu_kit::{
    Error,
    auth::Principal,
    error::Violations,
    parse::{self, ts, ts_opt},
};
use kefu_proto::training::v1::{self as pb, AttemptState as S, QuestionKind as Q};
use rand::seq::SliceRandom;

use super::{MANAGES, READS_ALL, TrainingApi};
use crate::{
    domain::{self, ItemResult},
    store::{self, AttemptRow, ExamRow, ItemRow, PoolSpec, QuestionRow, json, to_json},
};

fn kind_of(n: i64) -> Q {
    Q::try_from(n as i32).unwrap_or(Q::Unspecified)
}

fn state_of(a: &AttemptRow) -> S {
    S::try_from(a.state as i32).unwrap_or(S::Unspecified)
}

fn code(s: S) -> i64 {
    i64::from(s as i32)
}

fn question_pb(q: &QuestionRow) -> Result<pb::Question, Error> {
    Ok(pb::Question {
        id: q.id.clone(),
        kind: q.kind as i32,
        stem: q.stem.clone(),
        options: json("questions", &q.id, &q.options)?,
        correct: json("questions", &q.id, &q.correct)?,
        answer_guide: q.answer_guide.clone(),
        points: i32::try_from(q.points).unwrap_or(i32::MAX),
        tags: json("questions", &q.id, &q.tags)?,
        created_by: q.created_by.clone(),
    })
}

fn exam_pb(e: &ExamRow) -> Result<pb::Exam, Error> {
    let pools: Vec<PoolSpec> = json("exams", &e.id, &e.pools)?;
    Ok(pb::Exam {
        id: e.id.clone(),
        course_id: e.course_id.clone(),
        title: e.title.clone(),
        pools: pools
            .into_iter()
            .map(|p| pb::Pool { tag: p.tag, count: i32::try_from(p.count).unwrap_or(i32::MAX) })
            .collect(),
        time_limit_minutes: i32::try_from(e.time_limit_minutes).unwrap_or(i32::MAX),
        max_attempts: i32::try_from(e.max_attempts).unwrap_or(i32::MAX),
        pass_mark: i32::try_from(e.pass_mark).unwrap_or(i32::MAX),
        pre_test: e.pre_test == 1,
        created_by: e.created_by.clone(),
    })
}

/// What a caller sees of an attempt beyond the paper and its answers.
#[derive(Clone, Copy, Default)]
struct View {
    /// The correct options (once finished).
    key: bool,
    /// Short answers' marking guides.
    guide: bool,
}

/// The attempt as answered: answers once submitted, points once scored,
/// the key and guides as `view` allows.
fn attempt_pb(a: &AttemptRow, items: &[ItemRow], pass_mark: i64, view: View) -> Result<pb::Attempt, Error> {
    let state = state_of(a);
    let submitted = state != S::InProgress;
    let scored = matches!(state, S::Scored | S::Expired);
    let mut out = Vec::with_capacity(items.len());
    for i in items {
        out.push(pb::AttemptItem {
            question_id: i.question_id.clone(),
            kind: i.kind as i32,
            stem: i.stem.clone(),
            options: json("attempt_items", &i.attempt_id, &i.options)?,
            points: i32::try_from(i.points).unwrap_or(i32::MAX),
            chosen: if submitted { json("attempt_items", &i.attempt_id, &i.chosen)? } else { Vec::new() },
            text: if submitted { i.answer_text.clone() } else { String::new() },
            points_awarded: if scored || i.marked == 1 { i32::try_from(i.points_awarded).unwrap_or(0) } else { 0 },
            marked: i.marked == 1,
            marked_by: i.marked_by.clone(),
            correct: if scored && view.key { json("attempt_items", &i.attempt_id, &i.correct)? } else { Vec::new() },
            answer_guide: if view.guide { i.answer_guide.clone() } else { String::new() },
        });
    }
    Ok(pb::Attempt {
        id: a.id.clone(),
        exam_id: a.exam_id.clone(),
        staff_id: a.staff_id.clone(),
        number: i32::try_from(a.number).unwrap_or(i32::MAX),
        state: a.state as i32,
        items: out,
        start_time: ts(a.started_at),
        deadline: ts(a.deadline_at),
        submit_time: ts_opt(a.submitted_at),
        points_total: i32::try_from(a.points_total).unwrap_or(i32::MAX),
        points_awarded: if scored { i32::try_from(a.points_awarded).unwrap_or(0) } else { 0 },
        score: if scored { domain::percent(a.points_awarded, a.points_total) } else { 0.0 },
        passed: scored && domain::passed(a.points_awarded, a.points_total, pass_mark),
    })
}

/// What `p` sees of `a`: markers and managers the key and the guides; the
/// taker the key once they passed the exam or have no attempt left (a key
/// shown earlier would answer the next paper).
async fn view_of(conn: &mut sqlx::AnyConnection, p: &Principal, a: &AttemptRow, exam: &ExamRow) -> Result<View, Error> {
    if a.staff_id != p.subject {
        return Ok(View { key: true, guide: true });
    }
    let all = store::attempts_of(conn, &exam.id, &a.staff_id).await?;
    let used_up = i64::try_from(all.len()).unwrap_or(i64::MAX) >= exam.max_attempts
        && all.iter().all(|x| state_of(x) != S::InProgress);
    let passed = all
        .iter()
        .any(|x| state_of(x) == S::Scored && domain::passed(x.points_awarded, x.points_total, exam.pass_mark));
    Ok(View { key: used_up || passed, guide: false })
}

pub(super) async fn add_question(
    api: &TrainingApi,
    p: &Principal,
    r: pb::AddQuestionRequest,
) -> Result<pb::Question, Error> {
    let q = r.question.unwrap_or_default();
    let mut v = Violations::new();
    let kind = v.check(parse::enumeration::<Q>("question.kind", q.kind, None));
    let stem = v.check(parse::required_text("question.stem", &q.stem, 2000));
    let options: Vec<String> = q
        .options
        .iter()
        .enumerate()
        .filter_map(|(i, o)| v.check(parse::required_line(&format!("question.options[{i}]"), o, 500)))
        .collect();
    let guide = v.check(parse::text("question.answer_guide", &q.answer_guide, 2000)).unwrap_or_default();
    if !(1..=100).contains(&q.points) {
        v.add("question.points", "must be 1 to 100");
    }
    let tags = v.check(parse::tags("question.tags", &q.tags, 10, 32)).unwrap_or_default();
    if tags.is_empty() {
        v.add("question.tags", "give at least one tag (the pools papers draw from)");
    }
    if let Some(kind) = kind {
        for (field, why) in domain::question_shape(kind, &options, &q.correct) {
            v.add(format!("question.{field}"), why);
        }
        if kind == Q::ShortAnswer && guide.trim().is_empty() {
            v.add("question.answer_guide", "a short answer needs a guide for its markers");
        }
    }
    v.finish()?;
    let (Some(kind), Some(stem)) = (kind, stem) else { return Err(Error::invalid("question", "is not valid")) };
    let options = if kind == Q::TrueFalse { domain::TRUE_FALSE.map(str::to_owned).to_vec() } else { options };
    let row = QuestionRow {
        id: uuid::Uuid::now_v7().to_string(),
        kind: i64::from(kind as i32),
        stem,
        options: to_json(&options)?,
        correct: to_json(&q.correct)?,
        answer_guide: guide,
        points: i64::from(q.points),
        tags: to_json(&tags)?,
        created_by: p.subject.clone(),
        created_at: api.now(),
    };
    let mut tx = api.pool.begin().await?;
    store::insert_question(&mut tx, &row, &tags).await?;
    tx.commit().await?;
    question_pb(&row)
}

pub(super) async fn list_questions(
    api: &TrainingApi,
    r: pb::ListQuestionsRequest,
) -> Result<pb::ListQuestionsResponse, Error> {
    let tag = parse::line("tag", &r.tag, 32)?;
    let mut conn = api.reads.acquire().await?;
    let rows = store::questions(&mut conn, (!tag.is_empty()).then_some(tag.as_str())).await?;
    Ok(pb::ListQuestionsResponse { questions: rows.iter().map(question_pb).collect::<Result<_, _>>()? })
}

pub(super) async fn create_exam(api: &TrainingApi, p: &Principal, r: pb::CreateExamRequest) -> Result<pb::Exam, Error> {
    let e = r.exam.unwrap_or_default();
    let mut v = Violations::new();
    let course_id = v.check(parse::required_line("exam.course_id", &e.course_id, 64));
    let title = v.check(parse::required_line("exam.title", &e.title, 200));
    if e.pools.is_empty() || e.pools.len() > 20 {
        v.add("exam.pools", "give 1 to 20 pools");
    }
    let mut pools: Vec<PoolSpec> = Vec::new();
    for (i, pool) in e.pools.iter().enumerate() {
        let tag = v.check(parse::required_line(&format!("exam.pools[{i}].tag"), &pool.tag, 32));
        if !(1..=100).contains(&pool.count) {
            v.add(format!("exam.pools[{i}].count"), "must be 1 to 100 questions");
        }
        if let Some(tag) = tag {
            if pools.iter().any(|x| x.tag == tag) {
                v.add(format!("exam.pools[{i}].tag"), "is given twice");
            }
            pools.push(PoolSpec { tag, count: i64::from(pool.count) });
        }
    }
    if !(1..=600).contains(&e.time_limit_minutes) {
        v.add("exam.time_limit_minutes", "must be 1 to 600 minutes");
    }
    if !(1..=10).contains(&e.max_attempts) {
        v.add("exam.max_attempts", "must be 1 to 10");
    }
    if !(1..=100).contains(&e.pass_mark) {
        v.add("exam.pass_mark", "must be 1 to 100 percent");
    }
    v.finish()?;
    let (Some(course_id), Some(title)) = (course_id, title) else {
        return Err(Error::invalid("exam", "is not valid"));
    };
    let mut tx = api.pool.begin().await?;
    let course = store::course(&mut tx, &course_id)
        .await?
        .ok_or_else(|| Error::invalid("exam.course_id", format!("no course {course_id:?}")))?;
    // Each pool can fill its share of a paper from the bank.
    let mut v = Violations::new();
    for (i, pool) in pools.iter().enumerate() {
        let have = store::tag_count(&mut tx, &pool.tag).await?;
        if have < pool.count {
            v.add(format!("exam.pools[{i}].count"), format!("the bank has {have} question(s) tagged {:?}", pool.tag));
        }
    }
    v.finish()?;
    let row = ExamRow {
        id: uuid::Uuid::now_v7().to_string(),
        course_id: course.id,
        title,
        pools: to_json(&pools)?,
        time_limit_minutes: i64::from(e.time_limit_minutes),
        max_attempts: i64::from(e.max_attempts),
        pass_mark: i64::from(e.pass_mark),
        pre_test: i64::from(e.pre_test),
        created_by: p.subject.clone(),
        created_at: api.now(),
    };
    store::insert_exam(&mut tx, &row).await?;
    tx.commit().await?;
    exam_pb(&row)
}

pub(super) async fn list_exams(api: &TrainingApi, r: pb::ListExamsRequest) -> Result<pb::ListExamsResponse, Error> {
    let course = parse::line("course_id", &r.course_id, 64)?;
    let mut conn = api.reads.acquire().await?;
    let course_id = if course.is_empty() {
        None
    } else {
        Some(
            store::course(&mut conn, &course)
                .await?
                .ok_or_else(|| Error::invalid("course_id", format!("no course {course:?}")))?
                .id,
        )
    };
    let rows = store::exams(&mut conn, course_id.as_deref()).await?;
    Ok(pb::ListExamsResponse { exams: rows.iter().map(exam_pb).collect::<Result<_, _>>()? })
}

/// Ends an attempt left open past its deadline: expired, scored on what it
/// holds (nothing was submitted: 0). Whether it changed.
async fn expire_if_late(tx: &mut sqlx::AnyConnection, a: &mut AttemptRow, now: i64) -> Result<bool, Error> {
    if state_of(a) != S::InProgress || now <= a.deadline_at {
        return Ok(false);
    }
    a.state = code(S::Expired);
    a.points_awarded = 0;
    store::finish_attempt(tx, a, code(S::InProgress)).await
}

pub(super) async fn start(api: &TrainingApi, p: &Principal, r: pb::StartAttemptRequest) -> Result<pb::Attempt, Error> {
    let id = parse::id("exam_id", &r.exam_id)?;
    let now = api.now();
    let mut tx = api.pool.begin().await?;
    let exam = store::exam(&mut tx, &id).await?.ok_or_else(|| Error::NotFound(format!("exam {id}")))?;
    // A pre-test before one's session of the course starts; a final exam after completing it.
    let mine = store::course_enrolments_of(&mut tx, &exam.course_id, &p.subject).await?;
    let scheduled = i64::from(pb::SessionState::Scheduled as i32);
    let waiting = [pb::EnrolmentState::PendingApproval, pb::EnrolmentState::Enrolled, pb::EnrolmentState::Waitlisted]
        .map(|e| i64::from(e as i32));
    let may = if exam.pre_test == 1 {
        mine.iter().any(|(e, start, st)| waiting.contains(e) && *st == scheduled && *start > now)
    } else {
        mine.iter().any(|(e, _, _)| *e == i64::from(pb::EnrolmentState::Completed as i32))
    };
    if !may {
        return Err(Error::FailedPrecondition(if exam.pre_test == 1 {
            "the pre-test is for people enrolled in a session of the course that has not started".into()
        } else {
            "the exam is for people who completed a session of the course".into()
        }));
    }
    let mut earlier = store::attempts_of(&mut tx, &exam.id, &p.subject).await?;
    for a in &mut earlier {
        expire_if_late(&mut tx, a, now).await?;
    }
    if let Some(open) = earlier.iter().find(|a| state_of(a) == S::InProgress) {
        // One attempt at a time: starting again answers with the open one.
        let items = store::items(&mut tx, &open.id).await?;
        let out = attempt_pb(open, &items, exam.pass_mark, View::default())?;
        tx.commit().await?;
        return Ok(out);
    }
    if i64::try_from(earlier.len()).unwrap_or(i64::MAX) >= exam.max_attempts {
        tx.commit().await?;
        return Err(Error::FailedPrecondition(format!("all {} attempt(s) of this exam are used", exam.max_attempts)));
    }
    // The paper: each pool's share drawn at random, no question twice.
    let pools: Vec<PoolSpec> = json("exams", &exam.id, &exam.pools)?;
    let mut drawn: Vec<QuestionRow> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for pool in &pools {
        let mut candidates: Vec<QuestionRow> =
            store::questions(&mut tx, Some(&pool.tag)).await?.into_iter().filter(|q| !seen.contains(&q.id)).collect();
        let want = usize::try_from(pool.count).unwrap_or(0);
        if candidates.len() < want {
            return Err(Error::FailedPrecondition(format!(
                "the bank has too few questions tagged {:?} left for a paper ({} of {want})",
                pool.tag,
                candidates.len()
            )));
        }
        candidates.shuffle(&mut rand::thread_rng());
        for q in candidates.into_iter().take(want) {
            seen.insert(q.id.clone());
            drawn.push(q);
        }
    }
    let attempt = AttemptRow {
        id: uuid::Uuid::now_v7().to_string(),
        exam_id: exam.id.clone(),
        staff_id: p.subject.clone(),
        number: i64::try_from(earlier.len()).unwrap_or(0) + 1,
        state: code(S::InProgress),
        started_at: now,
        deadline_at: now + exam.time_limit_minutes * 60_000,
        submitted_at: None,
        points_total: drawn.iter().map(|q| q.points).sum(),
        points_awarded: 0,
    };
    if !store::insert_attempt(&mut tx, &attempt).await? {
        // Started at the same moment by another call: that attempt stands.
        drop(tx);
        let mut conn = api.pool.acquire().await?;
        let all = store::attempts_of(&mut conn, &exam.id, &p.subject).await?;
        let same = all.iter().find(|a| a.number == attempt.number).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("attempt {} of exam {} is missing", attempt.number, exam.id))
        })?;
        let items = store::items(&mut conn, &same.id).await?;
        return attempt_pb(same, &items, exam.pass_mark, View::default());
    }
    let mut items = Vec::with_capacity(drawn.len());
    for (i, q) in drawn.iter().enumerate() {
        let item = ItemRow {
            attempt_id: attempt.id.clone(),
            position: i64::try_from(i).unwrap_or(0),
            question_id: q.id.clone(),
            kind: q.kind,
            stem: q.stem.clone(),
            options: q.options.clone(),
            correct: q.correct.clone(),
            answer_guide: q.answer_guide.clone(),
            points: q.points,
            answered: 0,
            chosen: "[]".into(),
            answer_text: String::new(),
            points_awarded: 0,
            marked: 0,
            marked_by: String::new(),
        };
        store::insert_item(&mut tx, &item).await?;
        items.push(item);
    }
    tx.commit().await?;
    attempt_pb(&attempt, &items, exam.pass_mark, View::default())
}

/// Whether the caller marks `taker`'s answers to this exam: the trainer of
/// a session of its course the taker was enrolled in, or a manager.
async fn marks(conn: &mut sqlx::AnyConnection, p: &Principal, exam: &ExamRow, taker: &str) -> Result<bool, Error> {
    if p.has_any(MANAGES) {
        return Ok(true);
    }
    let cancelled = i64::from(pb::SessionState::Cancelled as i32);
    store::trains_taker(conn, &exam.course_id, &p.subject, taker, cancelled).await
}

/// The attempt and its exam, for the caller: their own, or one they mark
/// or read (others: not found).
async fn visible_attempt(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<(AttemptRow, ExamRow), Error> {
    let a = store::attempt(conn, id).await?.ok_or_else(|| Error::NotFound(format!("attempt {id}")))?;
    let exam = store::exam(conn, &a.exam_id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("exam {} of attempt {} is missing", a.exam_id, a.id)))?;
    if a.staff_id != p.subject && !p.has_any(READS_ALL) && !marks(conn, p, &exam, &a.staff_id).await? {
        return Err(Error::NotFound(format!("attempt {id}")));
    }
    Ok((a, exam))
}

pub(super) async fn get(api: &TrainingApi, p: &Principal, r: pb::GetAttemptRequest) -> Result<pb::Attempt, Error> {
    let id = parse::id("id", &r.id)?;
    let mut tx = api.pool.begin().await?;
    let (mut a, exam) = visible_attempt(&mut tx, p, &id).await?;
    expire_if_late(&mut tx, &mut a, api.now()).await?;
    let items = store::items(&mut tx, &a.id).await?;
    let view = view_of(&mut tx, p, &a, &exam).await?;
    tx.commit().await?;
    attempt_pb(&a, &items, exam.pass_mark, view)
}

pub(super) async fn list_attempts(
    api: &TrainingApi,
    p: &Principal,
    r: pb::ListAttemptsRequest,
) -> Result<pb::ListAttemptsResponse, Error> {
    let mut v = Violations::new();
    let id = v.check(parse::id("exam_id", &r.exam_id)).unwrap_or_default();
    let staff = v.check(parse::line("staff_id", &r.staff_id, 64)).unwrap_or_default();
    let state = if r.state == 0 { None } else { v.check(parse::enumeration::<S>("state", r.state, None)).map(code) };
    v.finish()?;
    let mut conn = api.reads.acquire().await?;
    let exam = store::exam(&mut conn, &id).await?.ok_or_else(|| Error::NotFound(format!("exam {id}")))?;
    let everyone = p.has_any(READS_ALL) || p.has_any(MANAGES);
    let who = if staff.is_empty() { (!everyone).then(|| p.subject.clone()) } else { Some(staff) };
    let rows = store::attempts_list(&mut conn, &exam.id, who.as_deref(), state).await?;
    let mut attempts = Vec::with_capacity(rows.len());
    for a in &rows {
        // Others' attempts: only those the caller reads or marks.
        if a.staff_id != p.subject && !everyone && !marks(&mut conn, p, &exam, &a.staff_id).await? {
            continue;
        }
        let items = store::items(&mut conn, &a.id).await?;
        let view = view_of(&mut conn, p, a, &exam).await?;
        attempts.push(attempt_pb(a, &items, exam.pass_mark, view)?);
    }
    Ok(pb::ListAttemptsResponse { attempts })
}

pub(super) async fn submit(
    api: &TrainingApi,
    p: &Principal,
    r: pb::SubmitAttemptRequest,
) -> Result<pb::Attempt, Error> {
    let id = parse::id("id", &r.id)?;
    let now = api.now();
    let mut tx = api.pool.begin().await?;
    let mut a = store::lock_attempt(&mut tx, &id).await?.ok_or_else(|| Error::NotFound(format!("attempt {id}")))?;
    if a.staff_id != p.subject {
        return Err(Error::NotFound(format!("attempt {id}")));
    }
    let exam = store::exam(&mut tx, &a.exam_id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("exam {} of attempt {} is missing", a.exam_id, a.id)))?;
    match state_of(&a) {
        S::InProgress if now > a.deadline_at => {
            expire_if_late(&mut tx, &mut a, now).await?;
            tx.commit().await?;
            return Err(Error::FailedPrecondition(format!(
                "the time allowed ran out at {}; the attempt is closed",
                beijing(a.deadline_at)
            )));
        }
        S::InProgress => {}
        _ => return Err(Error::FailedPrecondition("the attempt was submitted already".into())),
    }
    let mut items = store::items(&mut tx, &a.id).await?;
    // Every answer is checked against the paper before anything is kept.
    let mut v = Violations::new();
    let mut given: BTreeMap<usize, &pb::Answer> = BTreeMap::new();
    for (i, ans) in r.answers.iter().enumerate() {
        let Some(pos) = items.iter().position(|it| it.question_id == ans.question_id) else {
            v.add(format!("answers[{i}].question_id"), "is not a question of this attempt's paper");
            continue;
        };
        if given.insert(pos, ans).is_some() {
            v.add(format!("answers[{i}].question_id"), "is answered twice");
            continue;
        }
        let it = &items[pos];
        let options: Vec<String> = json("attempt_items", &it.attempt_id, &it.options)?;
        if let Err(why) = domain::chosen_ok(kind_of(it.kind), options.len(), &ans.chosen) {
            v.add(format!("answers[{i}].chosen"), why);
        }
        if kind_of(it.kind) != Q::ShortAnswer && !ans.text.is_empty() {
            v.add(format!("answers[{i}].text"), "a choice is chosen, not written");
        }
        v.check(parse::text(&format!("answers[{i}].text"), &ans.text, 5000));
    }
    v.finish()?;
    let mut awaiting = false;
    for (pos, it) in items.iter_mut().enumerate() {
        let ans = given.get(&pos);
        let chosen: Vec<i32> = ans.map(|a| a.chosen.clone()).unwrap_or_default();
        let text = ans.map(|a| a.text.trim().to_owned()).unwrap_or_default();
        it.answered = i64::from(ans.is_some_and(|_| !chosen.is_empty() || !text.is_empty()));
        it.chosen = to_json(&chosen)?;
        it.answer_text = text;
        if kind_of(it.kind) == Q::ShortAnswer {
            if it.answered == 1 {
                awaiting = true;
            } else {
                // Left blank: nothing to mark.
                it.marked = 1;
                it.points_awarded = 0;
            }
        } else {
            let correct: Vec<i32> = json("attempt_items", &it.attempt_id, &it.correct)?;
            it.points_awarded = domain::score_choice(&correct, &chosen, it.points);
            it.marked = 1;
        }
        store::save_item(&mut tx, it).await?;
    }
    a.submitted_at = Some(now);
    a.points_awarded = items.iter().map(|i| i.points_awarded).sum();
    a.state = code(if awaiting { S::AwaitingMarking } else { S::Scored });
    if !store::finish_attempt(&mut tx, &a, code(S::InProgress)).await? {
        return Err(Error::FailedPrecondition("the attempt was submitted already".into()));
    }
    let view = view_of(&mut tx, p, &a, &exam).await?;
    tx.commit().await?;
    attempt_pb(&a, &items, exam.pass_mark, view)
}

fn beijing(ms: i64) -> String {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

pub(super) async fn mark(api: &TrainingApi, p: &Principal, r: pb::MarkAnswerRequest) -> Result<pb::Attempt, Error> {
    let mut v = Violations::new();
    let id = v.check(parse::id("id", &r.id)).unwrap_or_default();
    let question = v.check(parse::id("question_id", &r.question_id)).unwrap_or_default();
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    // Marks of one attempt queue on its row: none is lost to another.
    store::lock_attempt(&mut tx, &id).await?;
    let (mut a, exam) = visible_attempt(&mut tx, p, &id).await?;
    if !marks(&mut tx, p, &exam, &a.staff_id).await? {
        return Err(Error::PermissionDenied("answers are marked by the course's trainers and managers".into()));
    }
    if a.staff_id == p.subject {
        return Err(Error::PermissionDenied("nobody marks their own answers".into()));
    }
    if state_of(&a) != S::AwaitingMarking {
        return Err(Error::FailedPrecondition("the attempt has no answers waiting to be marked".into()));
    }
    let mut items = store::items(&mut tx, &a.id).await?;
    let Some(it) = items.iter_mut().find(|i| i.question_id == question) else {
        return Err(Error::invalid("question_id", "is not a question of this attempt's paper"));
    };
    if kind_of(it.kind) != Q::ShortAnswer {
        return Err(Error::invalid("question_id", "is a choice question, scored when submitted"));
    }
    if it.answered == 0 {
        return Err(Error::invalid("question_id", "was left blank: it scores 0 and is not marked"));
    }
    if !(0..=it.points).contains(&i64::from(r.points)) {
        return Err(Error::invalid("points", format!("must be 0 to {}", it.points)));
    }
    it.points_awarded = i64::from(r.points);
    it.marked = 1;
    it.marked_by = p.subject.clone();
    store::save_item(&mut tx, it).await?;
    a.points_awarded = items.iter().map(|i| i.points_awarded).sum();
    let all_marked = items.iter().all(|i| i.marked == 1);
    let from = a.state;
    if all_marked {
        a.state = code(S::Scored);
    }
    if !store::finish_attempt(&mut tx, &a, from).await? {
        return Err(Error::Aborted("the attempt changed meanwhile; mark again".into()));
    }
    tx.commit().await?;
    attempt_pb(&a, &items, exam.pass_mark, View { key: true, guide: true })
}

pub(super) async fn item_analysis(api: &TrainingApi, r: pb::GetItemAnalysisRequest) -> Result<pb::ItemAnalysis, Error> {
    let id = parse::id("exam_id", &r.exam_id)?;
    let mut conn = api.reads.acquire().await?;
    let exam = store::exam(&mut conn, &id).await?.ok_or_else(|| Error::NotFound(format!("exam {id}")))?;
    let attempts = store::attempts_in(&mut conn, &exam.id, code(S::Scored)).await?;
    let mut scores = Vec::with_capacity(attempts.len());
    let mut per_question: BTreeMap<String, (String, Vec<(f64, ItemResult)>)> = BTreeMap::new();
    let mut passed = 0;
    for a in &attempts {
        let score = domain::percent(a.points_awarded, a.points_total);
        scores.push(score);
        if domain::passed(a.points_awarded, a.points_total, exam.pass_mark) {
            passed += 1;
        }
        for it in store::items(&mut conn, &a.id).await? {
            per_question
                .entry(it.question_id.clone())
                .or_insert_with(|| (it.stem.clone(), Vec::new()))
                .1
                .push((score, ItemResult { awarded: it.points_awarded, points: it.points }));
        }
    }
    let n = attempts.len();
    let items = per_question
        .into_iter()
        .map(|(qid, (stem, results))| {
            let (difficulty, discrimination) = domain::item_stats(&scores, &results);
            pb::ItemStats {
                question_id: qid,
                stem,
                answered: i32::try_from(results.len()).unwrap_or(i32::MAX),
                difficulty,
                discrimination,
            }
        })
        .collect();
    Ok(pb::ItemAnalysis {
        exam_id: exam.id,
        attempts_scored: i32::try_from(n).unwrap_or(i32::MAX),
        average_score: if n == 0 { 0.0 } else { scores.iter().sum::<f64>() / n as f64 },
        pass_rate: if n == 0 { 0.0 } else { f64::from(passed) / n as f64 },
        items,
    })
}
