#!/usr/bin/env python3
"""Wrap Contact Lens calls in generic call-centre talk: the long-call validation set.

Real calls open and close with minutes of talk that says nothing about the call type (greeting,
recorded-line notice, identity checks, holds, "anything else?", the survey). This script takes
Contact Lens voice documents (e.g. the STAR dev calls) and writes copies whose transcript is

    opening generic talk (150..1,500 words)  +  the original turns  +  closing talk (150..1,000 words)

with offsets shifted so the turns stay in time order, the contact id and file name unchanged
(so the original labels CSV still applies). The generic talk is ours, written for this purpose,
and avoids the words that name STAR's tasks (bank, doctor, hotel, weather, party, ride, book,
schedule, …) so it cannot give the label away.

    python3 scripts/long-calls/wrap.py SRC_DIR OUT_DIR [--labels CSV --per-label N] [--seed 7]
        [--pool eval|train] [--fraction F]

`--pool train` draws the talk from a second pool, disjoint from the validation set's, for
training copies; `--fraction` wraps a seeded share of the calls. Every run first checks that no
sentence template of the eval pool is one of the train pool's and that no generic talk names a
task (`check_pools`). `bench.py` builds the long-call benchmark from the eval pool.
"""
import argparse
import csv
import json
import os
import random
import re
import sys
import uuid
from collections import defaultdict

NAMES = ["Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Jamie", "Riley", "Chris", "Dana"]
SURNAMES = ["Smith", "Patel", "Nguyen", "Garcia", "Okafor", "Kowalski", "Murphy", "Lee", "Haddad"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]

# (role, text) exchanges; {x} fields are filled at random. Neutral wording on purpose.
OPENING = [
    [("AGENT", "Thank you for calling, my name is {agent}, this call may be recorded for quality "
               "and training purposes. Who do I have the pleasure of speaking with today?"),
     ("CUSTOMER", "Hi {agent}, this is {name} {surname}."),
     ("AGENT", "Lovely to speak with you {name}. Before we go any further I just need to ask you a "
               "few questions to confirm who I am speaking with, is that alright?"),
     ("CUSTOMER", "Yes that's fine, go ahead.")],
    [("AGENT", "Could you please confirm your full name and your date of birth for me?"),
     ("CUSTOMER", "Sure, it's {name} {surname}, and I was born on the {day} of {month} {year}."),
     ("AGENT", "Thank you. And the first line of your address and the postcode, please?"),
     ("CUSTOMER", "It's {num} {street} Road, and the postcode is {pc}."),
     ("AGENT", "Perfect, thank you for that. And can you give me the second and fourth characters "
               "of your security word?"),
     ("CUSTOMER", "Let me think, I always forget this one. Is it {c1} and {c2}?"),
     ("AGENT", "That's correct, thank you, you've passed security.")],
    [("AGENT", "Bear with me one moment while I bring up your details, our system is running a "
               "little slowly this morning, I do apologise."),
     ("CUSTOMER", "No problem, take your time."),
     ("AGENT", "Thank you for your patience. It's still loading. While we wait, is the best number "
               "to reach you still the one ending in {digits}?"),
     ("CUSTOMER", "Yes, that's still my mobile number."),
     ("AGENT", "Great, and the email we have on file, is that still current as well?"),
     ("CUSTOMER", "I think so, yes, it should be the same one as before."),
     ("AGENT", "Wonderful. Okay, I have everything up on my screen now.")],
    [("AGENT", "Just so you know, I'm going to read you a short notice before we begin. Calls are "
               "recorded and monitored, and you can ask for a copy of our privacy notice at any "
               "time. Do you understand and agree to continue?"),
     ("CUSTOMER", "Yes, I understand."),
     ("AGENT", "Thank you. And is there anybody else on the line with you today, or anybody you'd "
               "like to add as an authorised person on your file?"),
     ("CUSTOMER", "No, it's just me.")],
    [("CUSTOMER", "Sorry, can you hear me okay? I'm on a hands-free set and the line keeps cutting "
                  "out a little bit."),
     ("AGENT", "I can hear you, it's a little faint but that's fine. If the call drops I'll call "
               "you straight back on the number ending {digits}."),
     ("CUSTOMER", "Okay, thank you, that's good to know. I've been waiting in the queue for quite "
                  "a while."),
     ("AGENT", "I'm really sorry about the wait, we've been very busy today. I appreciate you "
               "holding on.")],
    [("AGENT", "I'm going to place you on a brief hold while I check something, it should only be "
               "a couple of minutes, is that okay?"),
     ("CUSTOMER", "That's okay."),
     ("AGENT", "Thank you so much for holding, {name}, I'm sorry that took a little longer than I "
               "expected."),
     ("CUSTOMER", "That's alright, I had the music to keep me company."),
     ("AGENT", "Ha, I'm sure you've heard that tune enough times by now.")],
    [("AGENT", "Can I also confirm, have we spoken to you in the last thirty days about anything "
               "else? I just want to make sure I have the full picture from the notes."),
     ("CUSTOMER", "I don't think so, not that I remember."),
     ("AGENT", "Okay, I can see a note from {month} but it looks like that was closed. Let me just "
               "add today's date to your file."),
     ("CUSTOMER", "Alright.")],
]
CLOSING = [
    [("AGENT", "Is there anything else I can help you with today?"),
     ("CUSTOMER", "No, I think that's everything for now, thank you."),
     ("AGENT", "You're very welcome. Just to summarise, I've made a note of everything we discussed "
               "on your file and you'll receive a confirmation by email within the next "
               "{hours} hours."),
     ("CUSTOMER", "Great, thanks.")],
    [("AGENT", "At the end of this call you may receive a short survey about the service you had "
               "today. It only takes a minute and your feedback really helps us."),
     ("CUSTOMER", "Sure, I'll try to do it."),
     ("AGENT", "Thank you. Your reference number for today's call is {ref}, would you like me to "
               "repeat that?"),
     ("CUSTOMER", "Could you repeat it please, I'm just writing it down."),
     ("AGENT", "Of course, it's {ref}."),
     ("CUSTOMER", "Got it, thank you.")],
    [("AGENT", "Before you go, I just need to read out a short statement. If you have any further "
               "questions you can reach us on the number on our website, or through the chat on "
               "the app, seven days a week."),
     ("CUSTOMER", "Okay, that's helpful."),
     ("AGENT", "And if anything changes please do give us a call back and quote your reference."),
     ("CUSTOMER", "Will do.")],
    [("CUSTOMER", "Sorry, one more thing, will I get a text message to confirm all this?"),
     ("AGENT", "Yes, you should receive a text to the number ending {digits} shortly, and an email "
               "as well."),
     ("CUSTOMER", "Perfect. You've been really helpful today."),
     ("AGENT", "Thank you, that's very kind of you to say. I hope you have a lovely rest of your "
               "day, {name}."),
     ("CUSTOMER", "You too, goodbye."),
     ("AGENT", "Goodbye now.")],
    [("AGENT", "Let me just double-check I've updated everything correctly. Bear with me one "
               "moment."),
     ("CUSTOMER", "Sure."),
     ("AGENT", "Okay, yes, that's all saved now. The changes can take up to {hours} hours to show "
               "on your side, so please don't worry if you don't see them straight away."),
     ("CUSTOMER", "Okay, thanks for letting me know.")],
]

# A second, disjoint pool of generic talk for *training* copies (`--pool train`), so that a
# model trained on wrapped calls is validated on talk it has never seen (`--pool eval`, above).
TRAIN_OPENING = [
    [("AGENT", "Hi there, thanks for holding. You've reached customer care, I'm {agent}. Can I "
               "start with the name on the account?"),
     ("CUSTOMER", "Hey {agent}, yeah, it's {name} {surname}."),
     ("AGENT", "Thanks {name}. For verification, what's the zip code on file?"),
     ("CUSTOMER", "That would be {zip}."),
     ("AGENT", "And the last four digits of the phone number we have for you?"),
     ("CUSTOMER", "It's {digits}{d1}."),
     ("AGENT", "Great, you're all verified, thanks for your patience.")],
    [("CUSTOMER", "Hello? Hello, is someone there?"),
     ("AGENT", "Yes, hi, I'm here, sorry about that, there was a short delay connecting you. "
               "Can you hear me alright now?"),
     ("CUSTOMER", "Yeah, that's better. I was on hold for like twenty minutes."),
     ("AGENT", "I'm sorry about the wait, we're seeing really heavy volumes this week. Thank you "
               "for sticking with us.")],
    [("AGENT", "Before we get started, a quick heads up that this conversation is being recorded "
               "so we can improve our service. Are you okay with that?"),
     ("CUSTOMER", "Sure, no problem."),
     ("AGENT", "Awesome. And just so I can address you properly, do you prefer {name} or would "
               "you like me to use something else?"),
     ("CUSTOMER", "{name} is fine.")],
    [("AGENT", "Okay, my screen just froze for a second, give me a moment to refresh it."),
     ("CUSTOMER", "Sure thing."),
     ("AGENT", "Alright, it's coming back now. Sorry, the computers have a mind of their own "
               "today."),
     ("CUSTOMER", "Ha, tell me about it, mine at work is the same."),
     ("AGENT", "Right? Okay, we're back in business.")],
    [("AGENT", "Can you spell your last name for me, just so I have it exactly right?"),
     ("CUSTOMER", "Sure, it's {spelled}."),
     ("AGENT", "Okay. And is the email address still the one starting with {c1}{c2}?"),
     ("CUSTOMER", "Yes, that's the one, I haven't changed it in years."),
     ("AGENT", "Good, I'll keep that as your contact then.")],
    [("CUSTOMER", "Sorry, my dog is barking, just give me one second to close the door."),
     ("AGENT", "Of course, no rush at all."),
     ("CUSTOMER", "Okay, sorry about that. Where were we?"),
     ("AGENT", "No worries, we were just getting started. I have your profile open now.")],
    [("AGENT", "I see you've been a member with us since {year2}, thank you for being with us "
               "for so long."),
     ("CUSTOMER", "Wow, has it really been that long? Time flies."),
     ("AGENT", "It sure does. I'm adding a note that we spoke today, one moment."),
     ("CUSTOMER", "Okay.")],
]
TRAIN_CLOSING = [
    [("AGENT", "Alright, was there anything else you needed help with while I have you?"),
     ("CUSTOMER", "Nope, that should be it, thanks a lot."),
     ("AGENT", "My pleasure. You'll get a confirmation text in a few minutes."),
     ("CUSTOMER", "Sounds good.")],
    [("AGENT", "If you stay on the line after we hang up, there's a two question survey about "
               "how I did today. It would really mean a lot."),
     ("CUSTOMER", "Yeah, I can do that, you were great."),
     ("AGENT", "Thank you so much, {name}. Take care now."),
     ("CUSTOMER", "You too, bye bye.")],
    [("AGENT", "Your case number for today is {ref}. Do you have something to write that down?"),
     ("CUSTOMER", "Hang on, let me grab a pen. Okay, go ahead."),
     ("AGENT", "{ref}."),
     ("CUSTOMER", "Got it, thanks.")],
    [("CUSTOMER", "Oh, and can you tell me the hours you're open in case I need to call back?"),
     ("AGENT", "Sure, we're available from eight in the morning until ten at night, every day "
               "of the week."),
     ("CUSTOMER", "Okay, perfect, that works."),
     ("AGENT", "Great. Thanks for calling, and have a wonderful evening.")],
    [("AGENT", "I've gone ahead and added notes to your profile, so if you call back anyone can "
               "pick up where we left off."),
     ("CUSTOMER", "That's really helpful, thank you."),
     ("AGENT", "Of course. Is the number ending {digits} the best one if we need to follow up?"),
     ("CUSTOMER", "Yes, that's my cell.")],
]

# Generic talk from the middle of a call (holds, line trouble, note-taking, small talk), in the
# eval pool's wording. Only the benchmark (`bench.py`) uses it, so `wrap.py`'s output is unchanged.
FILLER = [
    [("AGENT", "I'm just going to pop you on hold for a moment while I speak to my team leader, I "
               "won't be long."),
     ("CUSTOMER", "Okay, I'll wait here."),
     ("AGENT", "Thanks for waiting, {name}. My team leader has confirmed what I thought, so we can "
               "carry on."),
     ("CUSTOMER", "Oh good, that's a relief.")],
    [("CUSTOMER", "Sorry, could you say that again? You went very quiet for a second there."),
     ("AGENT", "Of course, can you hear me better now? I've moved a little closer to the "
               "microphone."),
     ("CUSTOMER", "Yes, much better, thank you.")],
    [("AGENT", "While the page refreshes, can I ask how you found the automated menu earlier? "
               "We're trying to make it quicker."),
     ("CUSTOMER", "It was alright, a bit long maybe, I pressed zero in the end."),
     ("AGENT", "That's useful feedback, I'll pass it on. Honestly, it's what most people say.")],
    [("AGENT", "I'm typing up my notes as we go so nobody has to ask you all this again, give me a "
               "second."),
     ("CUSTOMER", "Sure, there's no hurry."),
     ("AGENT", "Right, that's all written down. I've put today's date, the time and a short "
               "summary in there.")],
    [("CUSTOMER", "Do you mind if I put you on speaker? I need both hands for a moment."),
     ("AGENT", "Not at all, go ahead."),
     ("CUSTOMER", "Okay, I'm back. Thanks for bearing with me."),
     ("AGENT", "No problem at all, {name}.")],
    [("AGENT", "Can I just check I've got the spelling of your surname right, is that {surname}?"),
     ("CUSTOMER", "Yes, that's right."),
     ("AGENT", "Thank you, one of the older records had it slightly different, I've corrected "
               "that now.")],
    [("AGENT", "Apologies, it's gone a bit noisy in the office behind me, so you might hear people "
               "chatting."),
     ("CUSTOMER", "That's fine, I can barely hear it."),
     ("AGENT", "Oh good. It always gets busy around this time, everyone comes back from lunch "
               "at once.")],
]

# Words that name or give away STAR's tasks (its flows and subflows, and their obvious synonyms):
# no generic talk may contain a word starting with one of these.
TASK_WORDS = [
    "apartment", "flat", "rent", "bank", "balance", "fraud", "doctor", "appointment", "clinic",
    "hotel", "room", "meeting", "party", "parties", "rsvp", "invit", "plane", "flight", "airline",
    "restaurant", "table", "reservation", "ride", "taxi", "driver", "spaceship", "oxygen",
    "trip", "direction", "trivia", "weather", "forecast", "rain", "book", "schedul",
]


def sentences(pools):
    """The sentence templates of some pools of exchanges, lower-cased, punctuation dropped."""
    out = set()
    for pool in pools:
        for exchange in pool:
            for _, text in exchange:
                for s in re.split(r"(?<=[.?!])\s+", text):
                    out.add(" ".join(re.sub(r"[^a-z0-9{}' ]", " ", s.lower()).split()))
    return out


def check_pools():
    """Fails (SystemExit) if a sentence template of the eval pool is also one of the train pool's,
    or if any generic talk names one of STAR's tasks."""
    problems = []
    shared = sentences([OPENING, CLOSING, FILLER]) & sentences([TRAIN_OPENING, TRAIN_CLOSING])
    problems += [f"sentence in both the eval and the train pool: {s!r}" for s in sorted(shared)]
    for name, pool in [("OPENING", OPENING), ("CLOSING", CLOSING), ("FILLER", FILLER),
                       ("TRAIN_OPENING", TRAIN_OPENING), ("TRAIN_CLOSING", TRAIN_CLOSING)]:
        for exchange in pool:
            for _, text in exchange:
                for w in re.findall(r"[a-z]+", text.lower()):
                    if any(w.startswith(t) for t in TASK_WORDS):
                        problems.append(f"{name}: {w!r} names a task: {text!r}")
    if problems:
        sys.exit("generic talk check failed:\n  " + "\n  ".join(problems))


def values(rng, who, pool="eval"):
    """One draw of the fields an exchange mentions (so a repeated reference stays the same)."""
    v = dict(
        agent=who["agent"], name=who["name"], surname=who["surname"],
        day=rng.randint(1, 28), month=rng.choice(MONTHS), year=rng.randint(1950, 2004),
        num=rng.randint(1, 200), street=rng.choice(["Mill", "Station", "Church", "Park", "Green"]),
        pc=f"{rng.choice('ABCDEFGHKLMNPRS')}{rng.choice('ABCDEFGHKLMNPRS')}{rng.randint(1, 20)} "
           f"{rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
        c1=rng.choice("abcdefghijklmnoprstuw"), c2=rng.choice("abcdefghijklmnoprstuw"),
        digits=rng.randint(100, 999), hours=rng.choice([24, 48, 72]),
        ref=f"{rng.choice('ABCDEFGH')}{rng.randint(100000, 999999)}",
    )
    if pool == "train":  # drawn only here, so the eval pool's sequence is unchanged
        v.update(zip=rng.randint(10000, 99999), d1=rng.randint(0, 9), year2=rng.randint(1998, 2020),
                 spelled="-".join(who["surname"].upper()))
    return v


def talk(pool, lo, hi, rng, who, kind="eval"):
    """Exchanges drawn from `pool` until the word budget drawn from [lo, hi] is spent."""
    budget = rng.randint(lo, hi)
    turns, words = [], 0
    while words < budget:
        v = values(rng, who, kind)
        for role, text in rng.choice(pool):
            t = text.format(**v)
            turns.append((role, t))
            words += len(t.split())
    return turns


def turn(role, text, begin, rng):
    dur = int(len(text.split()) / 2.4 * 1000)  # ~144 words per minute
    return {
        "ParticipantId": role, "Id": str(uuid.UUID(int=rng.getrandbits(128))),
        "Content": text, "BeginOffsetMillis": begin, "EndOffsetMillis": begin + dur,
        "Sentiment": "NEUTRAL",
    }, begin + dur + rng.randint(300, 1500)


def wrap(doc, rng, pool="eval"):
    who = {"agent": rng.choice(NAMES), "name": rng.choice(NAMES), "surname": rng.choice(SURNAMES)}
    opening_pool, closing_pool = (OPENING, CLOSING) if pool == "eval" else (TRAIN_OPENING, TRAIN_CLOSING)
    opening = talk(opening_pool, 150, 1500, rng, who, pool)
    closing = talk(closing_pool, 150, 1000, rng, who, pool)
    return assemble(doc, opening, closing, rng)


def assemble(doc, opening, closing, rng):
    """`doc` with `opening` and `closing` ((role, text) turns) around its transcript, offsets
    shifted so the turns stay in time order; also the number of words in the new transcript."""
    out, t = [], 0
    for role, text in opening:
        x, t = turn(role, text, t, rng)
        out.append(x)
    orig = sorted(doc.get("Transcript", []), key=lambda x: x.get("BeginOffsetMillis", 0))
    base = orig[0]["BeginOffsetMillis"] if orig else 0
    shift = t - base
    for x in orig:
        x = dict(x)
        x["BeginOffsetMillis"] += shift
        x["EndOffsetMillis"] += shift
        out.append(x)
        t = max(t, x["EndOffsetMillis"] + 500)
    for role, text in closing:
        x, t = turn(role, text, t, rng)
        out.append(x)
    doc = dict(doc)
    doc["Transcript"] = out
    cc = dict(doc.get("ConversationCharacteristics", {}))
    cc["TotalConversationDurationMillis"] = t
    doc["ConversationCharacteristics"] = cc
    return doc, sum(len(x["Content"].split()) for x in out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--labels", help="contact_id,label CSV, needed with --per-label")
    ap.add_argument("--per-label", type=int, help="keep at most N calls per label (seeded)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pool", choices=["eval", "train"], default="eval",
                    help="which generic talk: eval (the validation set's) or train (disjoint, for training copies)")
    ap.add_argument("--new-ids", action="store_true",
                    help="give each copy a new contact id (uuid5 of the old one) so copies can sit beside "
                         "the originals; with --labels, OUT/labels.csv maps the new ids to the labels")
    ap.add_argument("--fraction", type=float,
                    help="wrap only this share of the calls (seeded); the rest are not written")
    a = ap.parse_args()
    check_pools()
    rng = random.Random(a.seed)
    files = sorted(f for f in os.listdir(a.src) if f.endswith(".json"))
    if a.per_label:
        if not a.labels:
            sys.exit("--per-label needs --labels")
        with open(a.labels, newline="") as f:
            label = {r["contact_id"]: r["label"] for r in csv.DictReader(f)}
        by = defaultdict(list)
        for f in files:
            by[label.get(f.split("_analysis")[0])].append(f)
        files = sorted(f for k, fs in by.items() if k for f in rng.sample(fs, min(a.per_label, len(fs))))
    if a.fraction is not None:
        files = sorted(rng.sample(files, round(len(files) * a.fraction)))
    os.makedirs(a.out, exist_ok=True)
    label = {}
    if a.labels:
        with open(a.labels, newline="") as fh:
            label = {r["contact_id"]: r["label"] for r in csv.DictReader(fh)}
    new_labels = []
    words = []
    for f in files:
        with open(os.path.join(a.src, f), encoding="utf-8") as fh:
            doc, n = wrap(json.load(fh), rng, a.pool)
        name = f
        if a.new_ids:
            old = f.split("_analysis")[0]
            new = str(uuid.uuid5(uuid.NAMESPACE_URL, f"calltype-wrapped:{old}"))
            name = new + f[len(old):]
            meta = dict(doc.get("CustomerMetadata", {}))
            meta["ContactId"] = new
            doc["CustomerMetadata"] = meta
            if old in label:
                new_labels.append((new, label[old]))
        with open(os.path.join(a.out, name), "w", encoding="utf-8") as fh:
            json.dump(doc, fh, separators=(",", ":"))
        words.append(n)
    if a.new_ids and a.labels:
        with open(os.path.join(a.out, "labels.csv"), "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["contact_id", "label"])
            w.writerows(sorted(new_labels))
    words.sort()
    print(f"wrapped {len(words)} calls into {a.out}: words per call median {words[len(words) // 2]}, "
          f"min {words[0]}, max {words[-1]}")


if __name__ == "__main__":
    main()
