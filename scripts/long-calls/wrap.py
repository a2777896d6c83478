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
"""
import argparse
import csv
import json
import os
import random
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


def values(rng, who):
    """One draw of the fields an exchange mentions (so a repeated reference stays the same)."""
    return dict(
        agent=who["agent"], name=who["name"], surname=who["surname"],
        day=rng.randint(1, 28), month=rng.choice(MONTHS), year=rng.randint(1950, 2004),
        num=rng.randint(1, 200), street=rng.choice(["Mill", "Station", "Church", "Park", "Green"]),
        pc=f"{rng.choice('ABCDEFGHKLMNPRS')}{rng.choice('ABCDEFGHKLMNPRS')}{rng.randint(1, 20)} "
           f"{rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
        c1=rng.choice("abcdefghijklmnoprstuw"), c2=rng.choice("abcdefghijklmnoprstuw"),
        digits=rng.randint(100, 999), hours=rng.choice([24, 48, 72]),
        ref=f"{rng.choice('ABCDEFGH')}{rng.randint(100000, 999999)}",
    )


def talk(pool, lo, hi, rng, who):
    """Exchanges drawn from `pool` until the word budget drawn from [lo, hi] is spent."""
    budget = rng.randint(lo, hi)
    turns, words = [], 0
    while words < budget:
        v = values(rng, who)
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


def wrap(doc, rng):
    who = {"agent": rng.choice(NAMES), "name": rng.choice(NAMES), "surname": rng.choice(SURNAMES)}
    opening = talk(OPENING, 150, 1500, rng, who)
    closing = talk(CLOSING, 150, 1000, rng, who)
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
    a = ap.parse_args()
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
    os.makedirs(a.out, exist_ok=True)
    words = []
    for f in files:
        with open(os.path.join(a.src, f), encoding="utf-8") as fh:
            doc, n = wrap(json.load(fh), rng)
        with open(os.path.join(a.out, f), "w", encoding="utf-8") as fh:
            json.dump(doc, fh, separators=(",", ":"))
        words.append(n)
    words.sort()
    print(f"wrapped {len(words)} calls into {a.out}: words per call median {words[len(words) // 2]}, "
          f"min {words[0]}, max {words[-1]}")


if __name__ == "__main__":
    main()
