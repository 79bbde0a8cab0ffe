module github.com/sluice-sms/sluice/tools

go 1.26.0

replace (
	github.com/sluice-sms/sluice/pkg => ../pkg
	github.com/sluice-sms/sluice/schemas => ../schemas
	github.com/sluice-sms/sluice/services/dlr => ../services/dlr
	github.com/sluice-sms/sluice/services/ingest => ../services/ingest
	github.com/sluice-sms/sluice/services/router => ../services/router
	github.com/sluice-sms/sluice/services/sender => ../services/sender
)
