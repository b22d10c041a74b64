# /etc/cron.d/mbg-telephony-dataset: rating, charges and the planner from cron.
#
# Every job below is commented out: uncomment the ones you want. They run as the
# system user "mbg" on the tree named by MBGROOT in /etc/default/mbg-telephony
# (create it once with: runuser -u mbg -- mbg init --root /var/lib/mbg).
# Output (the one-line summaries) goes to the mail of the mbg user; append
# ">>/var/log/mbg/... 2>&1" to keep it in a file instead. In crontab lines a
# literal % must be written \%.

SHELL=/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin

# Rate the current month's new calls every 5 minutes. Already rated calls are
# never touched again, so this is cheap and may run as often as you like.
#*/5 * * * *	mbg	. /etc/default/mbg-telephony && export MBGROOT && telephony-rating-monthly "$(date +\%Y-\%m-01)"

# Just after midnight: apply the service schedule due today, then charge today's
# subscription fees (the planner first, so that today's changes are charged).
#5 0 * * *	mbg	. /etc/default/mbg-telephony && export MBGROOT && billing-planner-daily "$(date +\%F)" && billing-cost-daily "$(date +\%F)"

# On the 2nd of the month: re-rate last month from scratch, so that calls which
# arrived late (merges, collectors that were down) are placed exactly.
#30 3 2 * *	mbg	. /etc/default/mbg-telephony && export MBGROOT && telephony-rating-monthly-force "$(date -d '-1 month' +\%Y-\%m-01)"
