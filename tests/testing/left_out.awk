# Checks that the second file is the first with at most `most` characters
# left out, and nothing added, moved or repeated: what a guest's output sent
# a character a frame may lose to kills of the device host that writes it
# (a frame is lost only between the host's delivery record taking it and
# the device writing it out). A left-out digit turns "line 126" into
# "line 26", so the check is on characters, not on lines.
#
#   awk -v most=N -f left_out.awk WANT GOT
#
# Prints one line of figures (and where the first character was left out);
# exits 1 when GOT is not such a copy of WANT.
FNR == NR { want = want $0 "\n"; next }
{ got = got $0 "\n" }
END {
    j = 1
    for (i = 1; i <= length(want); i++)
        if (j <= length(got) && substr(got, j, 1) == substr(want, i, 1))
            j++
        else if (!lost++)
            at = i
    extra = length(got) - j + 1
    printf "%d characters of %d, %d left out (at most %d), %d not in order or not printed\n",
           j - 1, length(want), lost, most, extra
    if (lost) {
        near = substr(want, at > 8 ? at - 8 : 1, 16)
        gsub(/\n/, "\\n", near)
        printf "the first left out: character %d, in \"%s\"\n", at, near
    }
    exit (extra || lost > most) ? 1 : 0
}
